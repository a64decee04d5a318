"""The audit report as PDF (reportlab), with the same charts as the HTML report.

Chinese text uses reportlab's built-in CID font ``STSong-Light`` (Adobe-GB1): the PDF names the font
and the reader supplies the glyphs, so no font file is shipped or fetched — it works offline. The
text stays extractable (a checker can search the PDF for the verification result).
"""

from __future__ import annotations

import io
from typing import Any
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from reportlab.graphics.shapes import Drawing, Rect, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from ledger.audit.charts import BAR_COLOR, Chart
from ledger.audit.report import SEVERITY_ZH, AuditReport, report_charts

FONT = "STSong-Light"
CHINA = ZoneInfo("Asia/Shanghai")
_registered = False


def _font() -> None:
    global _registered
    if not _registered:
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
        _registered = True


def _styles() -> dict[str, ParagraphStyle]:
    base = ParagraphStyle("body", fontName=FONT, fontSize=9, leading=13)
    return {
        "body": base,
        "h1": ParagraphStyle("h1", parent=base, fontSize=16, leading=22, spaceAfter=6),
        "h2": ParagraphStyle(
            "h2", parent=base, fontSize=12, leading=18, spaceBefore=10, spaceAfter=4, keepWithNext=1
        ),
        "cell": ParagraphStyle("cell", parent=base, fontSize=7.5, leading=9.5),
    }


def _t(value: Any) -> str:
    return escape("" if value is None else str(value))


def _when(value: Any) -> str:
    return str(value.astimezone(CHINA).strftime("%Y-%m-%d %H:%M"))


def _drawing(chart: Chart, width: float) -> Drawing:
    """The chart's layout (SVG coordinates, y down) drawn with reportlab shapes (y up), scaled."""
    scale = width / chart.width
    d = Drawing(width, chart.height * scale)
    d.add(String(2, (chart.height - 16) * scale, chart.title, fontName=FONT, fontSize=10))
    fill = colors.HexColor(BAR_COLOR)
    if chart.empty:
        d.add(String(2, chart.height * scale / 2, "无数据 No data", fontName=FONT, fontSize=9))
    for bar in chart.bars:
        y = (chart.height - bar.y - bar.height) * scale
        d.add(
            Rect(
                bar.x * scale,
                y,
                max(bar.width, 0.5) * scale,
                max(bar.height, 0.5) * scale,
                fillColor=fill,
                strokeColor=None,
            )
        )
        value = f"{bar.value:,.0f}" if float(bar.value).is_integer() else f"{bar.value:,.1f}"
        if chart.horizontal:
            mid = y + bar.height * scale / 2 - 3
            label = bar.label if len(bar.label) <= 18 else bar.label[:17] + "…"
            d.add(String(bar.x * scale - 4, mid, label, fontName=FONT, fontSize=8, textAnchor="end"))
            d.add(String((bar.x + bar.width) * scale + 3, mid, value, fontName=FONT, fontSize=8))
        else:
            cx = (bar.x + bar.width / 2) * scale
            d.add(
                String(cx, y + bar.height * scale + 3, value, fontName=FONT, fontSize=8, textAnchor="middle")
            )
            d.add(String(cx, 14 * scale, bar.label, fontName=FONT, fontSize=8, textAnchor="middle"))
    return d


def pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def _table(rows: list[list[str]], widths: list[float], style: ParagraphStyle) -> Table:
    body = [[Paragraph(cell, style) for cell in row] for row in rows]
    table = Table(body, colWidths=widths, repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#bbbbbb")),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#f2f5f9")),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    return table


def pdf(report: AuditReport) -> bytes:
    _font()
    st = _styles()
    s = report.statistics
    width = A4[0] - 30 * mm
    verdict = "完整 INTACT" if report.intact else "发现篡改 NOT INTACT"
    integrity = report.integrity
    story: list[Flowable] = [
        Paragraph("数据共享审计报告 Data-sharing audit report", st["h1"]),
        Paragraph(
            f"期间 Period：{_when(report.since)} – {_when(report.until)}（北京时间 Beijing time）", st["body"]
        ),
    ]
    scope = []
    if report.party:
        scope.append(f"单位 Party：{_t(report.party['name'])} ({_t(report.party['id'])})")
    if report.resource:
        scope.append(f"资源 Resource：{_t(report.resource['code'])} {_t(report.resource['name'])}")
    story.append(Paragraph("范围 Scope：" + ("；".join(scope) if scope else "全市 City-wide"), st["body"]))
    story.append(
        Paragraph(f"生成 Generated：{_when(report.generated_at)}，{_t(report.generated_by)}", st["body"])
    )
    story.append(Paragraph("结论摘要 Summary", st["h2"]))
    story.append(
        Paragraph(
            f"完整性验证 Integrity verification：<b>{verdict}</b>"
            f"（{integrity.get('entries')} 条记录 entries，"
            f"{integrity.get('checkpoints_checked')} 个检查点 checkpoints checked）",
            st["body"],
        )
    )
    counts = report.severity_counts
    story.append(
        Paragraph(
            f"本期数据交换 Exchanges：{s.total}；日志记录 Log records：{report.period_events}；"
            f"预警 Alerts：{report.alerts_total}（高 high {counts.get('high', 0)}，中 medium "
            f"{counts.get('medium', 0)}，低 low {counts.get('low', 0)}）",
            st["body"],
        )
    )

    story.append(Paragraph("数据交换统计 Exchange statistics", st["h2"]))
    charts = report_charts(s)
    for chart in charts[:3]:
        story += [_drawing(chart, width), Spacer(1, 4)]

    story.append(Paragraph("部门考核 Department scorecards", st["h2"]))
    story.append(_drawing(charts[3], width))
    rows = [
        [
            "部门 Department",
            "评分 Score",
            "按时率 On time",
            "逾期 Overdue",
            "覆盖 Coverage",
            "维护 Maintained",
            "疑义 Disputes",
            "提供/使用 Prov./cons.",
        ]
    ]
    for c in s.scorecards:
        rows.append(
            [
                _t(c.name),
                "—" if c.score is None else f"{c.score:g}",
                pct(c.on_time_rate),
                str(c.overdue_open),
                pct(c.catalog_coverage),
                f"{c.resources_maintained_within_year}/{c.resources}",
                f"{c.disputes_closed}/{c.disputes}",
                f"{c.exchanges_provided}/{c.exchanges_consumed}",
            ]
        )
    story.append(
        _table(rows, [w * width for w in (0.22, 0.09, 0.11, 0.09, 0.11, 0.12, 0.11, 0.15)], st["cell"])
    )

    story.append(Paragraph("预警 Alerts", st["h2"]))
    rows = [["级别 Severity", "规则 Rule", "说明 Message", "证据 Evidence (log indices)"]]
    for a in report.alerts[:100]:
        evidence = ", ".join(str(i) for i in a["evidence"][:10])
        if a["evidence_total"] > 10:
            evidence += f" …（{a['evidence_total']}）"
        rows.append(
            [f"{SEVERITY_ZH[a['severity']]} {a['severity']}", _t(a["rule"]), _t(a["message"]), evidence]
        )
    if len(rows) == 1:
        rows.append(["—", "—", "本期无预警 No alerts in the period", ""])
    story.append(_table(rows, [w * width for w in (0.12, 0.18, 0.45, 0.25)], st["cell"]))

    story.append(Paragraph("完整性验证 Integrity verification", st["h2"]))
    story.append(
        Paragraph(
            f"结果 Result：<b>{verdict}</b>。逐条重算 {integrity.get('entries')} 条记录的叶哈希并重建树根，"
            f"与链上 {integrity.get('checkpoints_checked')} 个锚定检查点及一致性证明比对"
            "（every leaf recomputed, "
            f"roots rebuilt and checked against the anchored checkpoints）；已锚定规模 anchored size "
            f"{integrity.get('anchored_size')}，用时 {integrity.get('seconds')} s。",
            st["body"],
        )
    )
    problems = integrity.get("problems") or []
    if problems:
        rows = [["日志序号 Log index", "问题 Problem", "详情 Detail"]]
        rows += [[str(p["index"]), _t(p["kind"]), _t(p["detail"])] for p in problems[:100]]
        story.append(_table(rows, [w * width for w in (0.15, 0.2, 0.65)], st["cell"]))

    story.append(Paragraph("所依据的链上锚定根 Anchored roots relied on", st["h2"]))
    story.append(
        Paragraph(
            f"链 ID chain id {report.chain_id}，锚定合约 anchor contract {_t(report.anchor_contract)}；"
            f"本期锚定 anchors in the period：{report.anchors_in_period}。可在链上以 rootAt(treeSize) 核对 "
            "(check each root with rootAt(treeSize) on the contract).",
            st["body"],
        )
    )
    rows = [
        [
            "树规模 Tree size",
            "根 Root / 交易 Transaction",
            "区块 Block",
            "锚定时间 Anchored",
            "用途 Relied on as",
        ]
    ]
    for r in report.anchors:
        hashes = "<br/>".join(h[i : i + 34] for h in (r.root, r.tx_hash) for i in (0, 34))
        rows.append([str(r.tree_size), hashes, str(r.block_number), _when(r.anchored_at), _t(r.why)])
    if len(rows) == 1:
        rows.append(["—", "尚无锚定 Nothing anchored yet", "", "", ""])
    story.append(_table(rows, [w * width for w in (0.1, 0.45, 0.08, 0.15, 0.22)], st["cell"]))

    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=15 * mm,
        bottomMargin=15 * mm,
        title="数据共享审计报告 Audit report",
        author="sharetrail",
    )
    doc.build(story)
    return out.getvalue()
