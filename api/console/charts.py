"""ECharts options for the console's charts, built here as plain JSON and drawn by ``console.js``
(no inline scripts, so the pages run under a strict Content-Security-Policy)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

Translate = Callable[..., str]
FONT = '"WenQuanYi Zen Hei", "Noto Sans CJK SC", "Microsoft YaHei", sans-serif'
COLORS = ["#1f5fa8", "#c0392b", "#2e8b57", "#d4a017", "#6c5ce7", "#16a085"]
_BASE: dict[str, Any] = {"textStyle": {"fontFamily": FONT}, "color": COLORS, "animation": False}


def volume(days: Sequence[dict[str, Any]], t: Translate) -> dict[str, Any]:
    """Deliveries and refusals per day: stacked bars."""
    return {
        **_BASE,
        "tooltip": {"trigger": "axis"},
        "legend": {"data": [t("chart.access"), t("chart.denied")], "top": 0},
        "grid": {"left": 48, "right": 16, "top": 36, "bottom": 40},
        "xAxis": {"type": "category", "data": [d["day"][5:] for d in days]},
        "yAxis": {"type": "value", "minInterval": 1},
        "series": [
            {
                "name": t("chart.access"),
                "type": "bar",
                "stack": "all",
                "data": [d["access"] for d in days],
                "itemStyle": {"color": COLORS[0]},
            },
            {
                "name": t("chart.denied"),
                "type": "bar",
                "stack": "all",
                "data": [d["denied"] for d in days],
                "itemStyle": {"color": COLORS[1]},
            },
        ],
    }


def months(by_month: Sequence[dict[str, Any]], t: Translate) -> dict[str, Any]:
    return {
        **_BASE,
        "tooltip": {"trigger": "axis"},
        "grid": {"left": 56, "right": 16, "top": 24, "bottom": 32},
        "xAxis": {"type": "category", "data": [m["month"] for m in by_month]},
        "yAxis": {"type": "value", "minInterval": 1, "name": t("chart.exchanges")},
        "series": [
            {
                "name": t("chart.exchanges"),
                "type": "bar",
                "barMaxWidth": 48,
                "data": [m["count"] for m in by_month],
                "label": {"show": True, "position": "top"},
            }
        ],
    }


def scores(cards: Sequence[dict[str, Any]], t: Translate) -> dict[str, Any]:
    """Each department's score and on-time rate: horizontal bars, best at the top."""
    ordered = list(reversed(cards))
    return {
        **_BASE,
        "tooltip": {"trigger": "axis", "axisPointer": {"type": "shadow"}},
        "legend": {"data": [t("chart.score"), t("chart.on_time")], "top": 0},
        "grid": {"left": 200, "right": 56, "top": 32, "bottom": 24},
        "xAxis": {"type": "value", "max": 100},
        "yAxis": {"type": "category", "data": [c["name"] for c in ordered]},
        "series": [
            {
                "name": t("chart.score"),
                "type": "bar",
                "data": [c["score"] for c in ordered],
                "label": {"show": True, "position": "right"},
            },
            {
                "name": t("chart.on_time"),
                "type": "bar",
                "data": [
                    None if c["on_time_rate"] is None else round(100 * c["on_time_rate"], 1) for c in ordered
                ],
            },
        ],
    }


_STAGE = {
    "provider": 0,
    "grant": 1,
    "contract": 1,
    "accessor": 2,
    "derived_product": 3,
    "onward_resource": 3,
}
_CATEGORIES = ("provider", "grant", "contract", "accessor", "derived_product", "onward_resource")


def lineage_labels(graph: dict[str, Any], purpose: Callable[[str | None], str]) -> dict[str, str]:
    """Node labels for people: a grant by its purpose and the tail of its id (grant ids share a long
    run of leading zeros), everything else by the service's label."""
    labels = {}
    for node in graph["nodes"]:
        label = str(node["label"])
        grant_id = str(node.get("grant_id") or "")
        if node["kind"] == "grant" and grant_id:
            tail = "…" + grant_id[-6:] if grant_id.startswith("0x") else grant_id
            label = f"{purpose(node['purpose'])} · {tail}" if node.get("purpose") else tail
        labels[str(node["id"])] = label
    return labels


def lineage_height(graph: dict[str, Any]) -> int:
    """Pixels for the graph: enough rows for the busiest stage."""
    per_stage: dict[int, int] = {}
    for node in graph["nodes"]:
        stage = _STAGE.get(node["kind"], 3)
        per_stage[stage] = per_stage.get(stage, 0) + 1
    return max(360, 120 + 100 * max(per_stage.values(), default=1))


def lineage(graph: dict[str, Any], labels: dict[str, str], t: Translate) -> dict[str, Any]:
    """The circulation path as a directed graph, laid out left to right by stage."""
    rows: dict[int, int] = {}
    nodes = []
    for node in graph["nodes"]:
        x = _STAGE.get(node["kind"], 3)
        y = rows.get(x, 0)
        rows[x] = y + 1
        nodes.append(
            {
                "id": node["id"],
                "name": labels.get(node["id"], node["label"]),
                "x": x * 300,
                "y": y * 90,
                "category": _CATEGORIES.index(node["kind"]) if node["kind"] in _CATEGORIES else 0,
                "symbolSize": 56 if node["kind"] == "provider" else 40,
            }
        )
    # centre each column on the tallest one
    tallest = max(rows.values(), default=1)
    for n in nodes:
        x = int(n["x"]) // 300
        n["y"] = int(n["y"]) + (tallest - rows[x]) * 45
    links = [
        {
            "source": e["source"],
            "target": e["target"],
            "value": e["count"],
            "label": {"show": True, "formatter": str(e["count"])},
            "lineStyle": {"width": 1 + min(6, e["count"] // 10)},
        }
        for e in graph["edges"]
    ]
    return {
        **_BASE,
        "tooltip": {},
        "legend": {"data": [t(f"lineage.{c}") for c in _CATEGORIES], "top": 0},
        "series": [
            {
                "type": "graph",
                "layout": "none",
                "roam": True,
                "top": 64,
                "bottom": 48,
                "left": 80,
                "right": 120,
                "label": {"show": True, "position": "bottom", "fontFamily": FONT},
                "edgeSymbol": ["none", "arrow"],
                "edgeSymbolSize": 9,
                "categories": [{"name": t(f"lineage.{c}")} for c in _CATEGORIES],
                "data": nodes,
                "links": links,
                "lineStyle": {"color": "source", "curveness": 0, "opacity": 0.8},
            }
        ],
    }
