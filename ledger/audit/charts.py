"""Bar charts for the audit report, laid out once and drawn twice: as inline SVG for the HTML report
(no JavaScript, nothing fetched) and with reportlab's graphics for the PDF.

Pure: :func:`layout` computes the geometry, :func:`svg` writes it; the PDF side reads the same
:class:`Chart`. Labels are escaped here, so a party or resource name cannot inject markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH = 640
BAR_COLOR = "#2f6fb0"
MAX_BARS = 12


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    x: float
    y: float  # top-left, SVG coordinates (y downwards)
    width: float
    height: float


@dataclass(frozen=True)
class Chart:
    title: str
    width: float
    height: float
    horizontal: bool
    bars: list[Bar]
    unit: str
    empty: bool


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def layout(
    title: str, items: Sequence[tuple[str, float]], *, horizontal: bool = True, unit: str = ""
) -> Chart:
    """Horizontal bars (one row per label, for names) or vertical ones (one column per label, for
    months); at most :data:`MAX_BARS`, largest value sets the scale."""
    shown = list(items)[:MAX_BARS]
    top = max((v for _, v in shown), default=0.0) or 1.0
    bars: list[Bar] = []
    if horizontal:
        label_w, row, pad = 220.0, 22.0, 30.0
        span = WIDTH - label_w - 70
        for n, (label, value) in enumerate(shown):
            bars.append(Bar(label, value, label_w, pad + n * row, span * value / top, row - 6))
        height = pad + max(1, len(shown)) * row + 10
    else:
        height, base, pad = 220.0, 180.0, 40.0
        col = (WIDTH - 2 * pad) / max(1, len(shown))
        for n, (label, value) in enumerate(shown):
            h = (base - 40) * value / top
            w = min(col * 0.7, 48.0)
            bars.append(Bar(label, value, pad + n * col + (col - w) / 2, base - h, w, h))
    return Chart(title, WIDTH, height, horizontal, bars, unit, empty=not shown)


def svg(chart: Chart) -> str:
    """The chart as an ``<svg>`` element (CJK font stack named; labels escaped)."""
    w, h = chart.width, chart.height
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0f}" height="{h:.0f}" '
        f'viewBox="0 0 {w:.0f} {h:.0f}" role="img" aria-label="{escape(chart.title)}" '
        "font-family=\"'Noto Sans CJK SC', 'WenQuanYi Zen Hei', 'Microsoft YaHei', sans-serif\" "
        'font-size="12">',
        f"<title>{escape(chart.title)}</title>",
        f'<text x="4" y="16" font-size="14" font-weight="bold">{escape(chart.title)}</text>',
    ]
    if chart.empty:
        out.append(f'<text x="4" y="{h / 2 + 10:.0f}" fill="#666">无数据 No data</text>')
    for bar in chart.bars:
        value = escape(_fmt(bar.value) + chart.unit)
        rect = (
            f'<rect x="{bar.x:.1f}" y="{bar.y:.1f}" width="{max(bar.width, 0.5):.1f}" '
            f'height="{max(bar.height, 0.5):.1f}" fill="{BAR_COLOR}"/>'
        )
        out.append(rect)
        if chart.horizontal:
            mid = bar.y + bar.height / 2 + 4
            label = escape(_short(bar.label))
            out.append(f'<text x="{bar.x - 6:.1f}" y="{mid:.1f}" text-anchor="end">{label}</text>')
            out.append(f'<text x="{bar.x + bar.width + 4:.1f}" y="{mid:.1f}">{value}</text>')
        else:
            cx = bar.x + bar.width / 2
            out.append(f'<text x="{cx:.1f}" y="{bar.y - 4:.1f}" text-anchor="middle">{value}</text>')
            out.append(f'<text x="{cx:.1f}" y="{h - 22:.1f}" text-anchor="middle">{escape(bar.label)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _short(label: str, limit: int = 18) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"
