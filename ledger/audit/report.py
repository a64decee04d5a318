"""``GET /v1/audit/report``: the audit report (审计报告) for a period and scope, as HTML or PDF.

建立数据安全审计跟踪机制: one document a regulator can file, stating what was exchanged
(:mod:`ledger.audit.stats`), what the alert rules found (:mod:`ledger.audit.alerts`), the result of a
full integrity audit run for the report (:mod:`ledger.audit.integrity`), and the anchored roots it
relied on — tree sizes, roots, transactions and blocks, so that a reader can check them on chain
without trusting the operator. zh-CN first, English beside.

The alert rules look at most 92 days at a time; a report's period (at most 366 days) is evaluated in
consecutive windows and identical alerts are reported once.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from sqlalchemy import func, select

from ledger.audit.alerts import MAX_WINDOW_DAYS, AlertService
from ledger.audit.charts import Chart, layout, svg
from ledger.audit.integrity import IntegrityAudit
from ledger.audit.stats import AUDITORS, Statistics, StatisticsService, check_period
from ledger.errors import Forbidden, InvalidInput, NotFound
from ledger.store.db import Store
from ledger.store.models import Checkpoint, LogEntry, Party, Resource

AUDITORS_ONLY = "audit reports are for the regulator and the registrar"
MAX_REPORT_DAYS = 366
DEFAULT_DAYS = 30
MAX_ANCHORS = 20
MAX_ALERTS = 200
TEMPLATES = Path(__file__).resolve().parent / "templates"
_CHINA = ZoneInfo("Asia/Shanghai")
SEVERITY_ZH = {"high": "高", "medium": "中", "low": "低"}


class ReportFormat(enum.StrEnum):
    HTML = "html"
    PDF = "pdf"


@dataclass(frozen=True)
class AnchoredRoot:
    tree_size: int
    root: str
    tx_hash: str
    block_number: int
    anchored_at: datetime
    why: str  # what the report relies on it for


@dataclass(frozen=True)
class AuditReport:
    generated_at: datetime
    generated_by: str
    since: datetime
    until: datetime
    party: dict[str, str] | None
    resource: dict[str, str] | None
    statistics: Statistics
    alerts: list[dict[str, Any]]
    alerts_total: int
    integrity: dict[str, Any]
    anchors: list[AnchoredRoot]
    anchors_in_period: int
    period_events: int  # log entries of every kind dated in the period
    chain_id: int = 0
    anchor_contract: str = ""
    severity_counts: dict[str, int] = field(default_factory=dict)

    @property
    def intact(self) -> bool:
        return bool(self.integrity.get("intact"))


@dataclass(frozen=True)
class RenderedReport:
    content: bytes
    media_type: str
    filename: str


class ReportService:
    def __init__(
        self,
        *,
        store: Store,
        statistics: StatisticsService,
        alerts: AlertService,
        integrity: IntegrityAudit,
    ) -> None:
        self.store = store
        self.statistics = statistics
        self.alerts = alerts
        self.integrity = integrity
        self._jinja = Environment(
            loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]), trim_blocks=True
        )

    def render(
        self,
        caller: Party,
        *,
        since: datetime | None,
        until: datetime | None,
        party_id: str | None = None,
        resource_id: str | None = None,
        format: ReportFormat = ReportFormat.HTML,
    ) -> RenderedReport:
        report = self.build(caller, since=since, until=until, party_id=party_id, resource_id=resource_id)
        stamp = f"{report.since:%Y%m%d}-{report.until:%Y%m%d}"
        if format is ReportFormat.PDF:
            from ledger.audit.report_pdf import pdf  # reportlab loads only when a PDF is asked for

            return RenderedReport(pdf(report), "application/pdf", f"sharetrail-audit-{stamp}.pdf")
        return RenderedReport(
            self.html(report).encode("utf-8"), "text/html; charset=utf-8", f"sharetrail-audit-{stamp}.html"
        )

    def build(
        self,
        caller: Party,
        *,
        since: datetime | None,
        until: datetime | None,
        party_id: str | None = None,
        resource_id: str | None = None,
    ) -> AuditReport:
        if caller.kind not in AUDITORS:
            raise Forbidden(AUDITORS_ONLY, code="forbidden_role")
        since, until = _period(since, until)
        stats = self.statistics.report(since=since, until=until, party_id=party_id, resource_id=resource_id)
        with self.store.read() as session:
            party = session.get(Party, party_id) if party_id else None
            resource = (
                session.get(Resource, resource_id)
                or session.scalar(select(Resource).where(Resource.code == resource_id))
                if resource_id
                else None
            )
            if resource_id and resource is None:  # the statistics found it: it was just removed
                raise NotFound(f"no resource {resource_id}", code="resource_not_found")
        alerts = self._alerts(caller, since, until, party_id, resource)
        integrity = self.integrity.run(caller)
        anchors, in_period, events = self._anchors(since, until, integrity)
        counts = {level: sum(1 for a in alerts if a["severity"] == level) for level in SEVERITY_ZH}
        return AuditReport(
            generated_at=datetime.now(UTC),
            generated_by=caller.name,
            since=since,
            until=until,
            party=None if party is None else {"id": party.id, "name": party.name, "kind": party.kind.value},
            resource=None
            if resource is None
            else {"id": resource.id, "code": resource.code, "name": resource.name},
            statistics=stats,
            alerts=alerts[:MAX_ALERTS],
            alerts_total=len(alerts),
            integrity=integrity,
            anchors=anchors,
            anchors_in_period=in_period,
            period_events=events,
            chain_id=int(integrity.get("chain_id") or 0),
            anchor_contract=str(integrity.get("anchor_contract") or ""),
            severity_counts=counts,
        )

    # -- parts --------------------------------------------------------------------------------------
    def _alerts(
        self,
        caller: Party,
        since: datetime,
        until: datetime,
        party_id: str | None,
        resource: Resource | None,
    ) -> list[dict[str, Any]]:
        seen: dict[str, dict[str, Any]] = {}
        start = since
        while start < until:
            end = min(until, start + timedelta(days=MAX_WINDOW_DAYS))
            for alert in self.alerts.evaluate(caller, since=start, until=end)["alerts"]:
                seen.setdefault(json.dumps(alert, sort_keys=True, default=str), alert)
            start = end
        found = list(seen.values())
        if resource is not None:
            refs = {resource.id, resource.code}
            found = [a for a in found if a["resource"] in refs]
        if party_id is not None:
            with self.store.read() as session:
                own = set(session.scalars(select(Resource.id).where(Resource.provider_id == party_id)))
                own |= set(session.scalars(select(Resource.code).where(Resource.provider_id == party_id)))
            found = [a for a in found if a["party"] == party_id or a["resource"] in own]
        order = {"high": 0, "medium": 1, "low": 2}
        found.sort(key=lambda a: (order.get(a["severity"], 3), a["rule"], a["time"] or ""))
        return found

    def _anchors(
        self, since: datetime, until: datetime, integrity: dict[str, Any]
    ) -> tuple[list[AnchoredRoot], int, int]:
        """The roots the report relies on: the latest anchored checkpoint (the integrity audit checked
        the whole log up to it), the first one covering the period's last event, and those anchored
        during the period (the latest :data:`MAX_ANCHORS`)."""
        with self.store.read() as session:
            period = [LogEntry.time >= since, LogEntry.time < until]
            events = int(session.scalar(select(func.count()).select_from(LogEntry).where(*period)) or 0)
            last = session.scalar(select(func.max(LogEntry.idx)).where(*period))
            covering = (
                None
                if last is None
                else session.scalar(
                    select(Checkpoint).where(Checkpoint.size > last).order_by(Checkpoint.size).limit(1)
                )
            )
            latest = session.scalar(select(Checkpoint).order_by(Checkpoint.size.desc()).limit(1))
            anchored = [Checkpoint.anchored_at >= since, Checkpoint.anchored_at < until]
            in_period = int(
                session.scalar(select(func.count()).select_from(Checkpoint).where(*anchored)) or 0
            )
            recent = list(
                session.scalars(
                    select(Checkpoint).where(*anchored).order_by(Checkpoint.size.desc()).limit(MAX_ANCHORS)
                )
            )
        roots: dict[int, AnchoredRoot] = {}

        def add(c: Checkpoint | None, why: str) -> None:
            if c is not None and c.size not in roots:
                roots[c.size] = AnchoredRoot(
                    tree_size=c.size,
                    root="0x" + bytes(c.root).hex(),
                    tx_hash=c.tx_hash,
                    block_number=c.block_number,
                    anchored_at=c.anchored_at if c.anchored_at.tzinfo else c.anchored_at.replace(tzinfo=UTC),
                    why=why,
                )

        add(latest, "最新锚定（完整性验证依据） latest anchored: the integrity audit's reference")
        add(covering, "覆盖本期最后一条记录 first to cover the period's last record")
        for c in recent:
            add(c, "本期锚定 anchored in the period")
        return sorted(roots.values(), key=lambda r: -r.tree_size), in_period, events

    # -- HTML ---------------------------------------------------------------------------------------
    def html(self, report: AuditReport) -> str:
        stats = report.statistics
        charts = report_charts(stats)
        template = self._jinja.get_template("report.html.j2")
        providers = sorted({x.provider_id for x in stats.by_resource if x.provider_id})
        names: dict[str, str] = {}
        if providers:
            with self.store.read() as session:
                names = {
                    i: n
                    for i, n in session.execute(select(Party.id, Party.name).where(Party.id.in_(providers)))
                }
        return template.render(
            r=report,
            s=stats,
            party_names=names,
            charts=[Markup(svg(c)) for c in charts],  # svg() escapes every label
            severity_zh=SEVERITY_ZH,
            beijing=lambda d: d.astimezone(_CHINA).strftime("%Y-%m-%d %H:%M"),
            pct=lambda v: "—" if v is None else f"{100 * v:.1f}%",
            num=lambda v: "—" if v is None else f"{v:g}",
        )


def _period(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    checked_since, checked_until = check_period(since, until)
    end = checked_until or datetime.now(UTC)
    start = checked_since or end - timedelta(days=DEFAULT_DAYS)
    if start >= end:
        raise InvalidInput("since must be before until", code="invalid_time_range")
    if end - start > timedelta(days=MAX_REPORT_DAYS):
        raise InvalidInput(f"a report covers at most {MAX_REPORT_DAYS} days", code="invalid_time_range")
    return start, end


def report_charts(stats: Statistics) -> list[Chart]:
    """The report's four charts — by month, by providing department, by resource, scores — laid out
    once for both the HTML (SVG) and the PDF (reportlab) renderings."""
    return [
        layout(
            "按月交换量 Exchanges by month", [(m.month, m.count) for m in stats.by_month], horizontal=False
        ),
        layout(
            "按部门（提供方）交换量 Exchanges by providing department",
            [(d.name or d.party_id, d.count) for d in stats.by_department],
        ),
        layout(
            "按资源交换量 Exchanges by resource",
            [(f"{r.code or ''} {r.name or r.resource_id}".strip(), r.count) for r in stats.by_resource],
        ),
        layout(
            "部门评分 Department scores", [(c.name, c.score) for c in stats.scorecards if c.score is not None]
        ),
    ]
