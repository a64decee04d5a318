"""The summary ``sharetrail simulate`` prints: per-phase wall time and rate, the Guiyang-scale
extrapolation, the counts found in the store, the skew of the generated events and the verify result.

The extrapolation is arithmetic, not a run: each phase's count at the default (Guiyang 2021) scale
divided by the rate measured here — for the events, the slower of the whole phase's rate and that of
its last 10 %, in case appending slows as the log grows. Still a projection: say so wherever it is quoted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.console import Group
from rich.table import Table

from ledger.log.verify import Report
from ledger.sim import city
from ledger.sim.feed import Skew


@dataclass
class Phase:
    name: str
    count: int
    unit: str
    seconds: float
    full_scale: int | None  # the count at the default (Guiyang) scale, for the extrapolation
    tail: tuple[int, float] | None = None  # (count, seconds) of the last 10 %: rates fall as a log grows

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0

    @property
    def tail_rate(self) -> float | None:
        if self.tail is None or self.tail[1] <= 0:
            return None
        return self.tail[0] / self.tail[1]

    @property
    def full_scale_seconds(self) -> float | None:
        """The count at Guiyang scale at the slower of the overall and the last-10 % rates."""
        if self.full_scale is None:
            return self.seconds
        rate = min(self.rate, self.tail_rate or self.rate)
        if not rate:
            return None
        return self.full_scale / rate


@dataclass
class SimReport:
    scale: city.Scale
    phases: list[Phase] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    skew: Skew = field(default_factory=Skew)
    departments: tuple[city.Department, ...] = ()
    verify: Report | None = None

    @property
    def intact(self) -> bool:
        return self.verify is not None and self.verify.intact


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def _rate(phase: Phase) -> str:
    if phase.full_scale is None:
        return ""
    text = f"{phase.rate:,.1f}/s"
    if phase.tail_rate is not None:
        text += f"\n(last 10 %: {phase.tail_rate:,.1f}/s)"
    return text


def phases_table(report: SimReport) -> Table:
    table = Table(title="sharetrail simulate — phases (wall time on this machine)")
    for col in ("phase", "count", "wall", "rate", "at Guiyang scale", "extrapolated wall"):
        table.add_column(col, justify="left" if col == "phase" else "right")
    total = 0.0
    full_total = 0.0
    for phase in report.phases:
        full = phase.full_scale_seconds
        total += phase.seconds
        full_total += full or 0.0
        table.add_row(
            phase.name,
            f"{phase.count:,} {phase.unit}",
            _duration(phase.seconds),
            _rate(phase),
            f"{phase.full_scale:,}" if phase.full_scale is not None else "(as measured)",
            _duration(full),
        )
    table.add_row(
        "total", "", _duration(total), "", "", _duration(full_total) + " (extrapolated)", style="bold"
    )
    return table


def counts_table(report: SimReport) -> Table:
    table = Table(title="in the store after the run")
    table.add_column("what")
    table.add_column("count", justify="right")
    for name, value in report.counts.items():
        table.add_row(name, f"{value:,}")
    return table


def skew_table(report: SimReport) -> Table:
    stats = report.skew
    n = max(stats.events, 1)
    table = Table(title="skew of the generated access events")
    table.add_column("measure")
    table.add_column("value", justify="right")
    if stats.by_accessor:
        top, top_count = stats.by_accessor.most_common(1)[0]
        table.add_row(f"top accessor: {report.departments[top].name}", f"{top_count / n:.1%}")
        if len(stats.by_accessor) > 1:
            second, second_count = stats.by_accessor.most_common(2)[1]
            table.add_row(f"next accessor: {report.departments[second].name}", f"{second_count / n:.1%}")
    hot = sorted(stats.by_resource.values(), reverse=True)
    if hot:
        top_share = max(1, round(len(hot) * 0.01))
        table.add_row(
            f"top {top_share} resource(s) (1 % of those accessed)", f"{sum(hot[:top_share]) / n:.1%}"
        )
    table.add_row(
        "in office hours (09:00–17:30 Asia/Shanghai, working days)", f"{stats.office_hours / n:.1%}"
    )
    table.add_row("denied", f"{stats.denied / n:.1%}")
    table.add_row("under an on-chain grant of this run", f"{stats.with_grant / n:.1%}")
    for mode, count in stats.by_mode.most_common():
        table.add_row(f"mode {mode}", f"{count / n:.1%}")
    return table


def render(report: SimReport) -> Group:
    verify = report.verify
    if verify is None:
        verdict = "verify: not run"
    elif verify.intact:
        verdict = (
            f"verify: INTACT — {verify.entries:,} entries match the {verify.checkpoints} checkpoint(s) "
            f"anchored on chain (anchored size {verify.anchored_size:,})"
        )
    else:
        lines = [p.describe() for p in verify.problems[:20]]
        verdict = "\n".join([f"verify: BROKEN — {len(verify.problems)} problem(s)", *lines])
    return Group(phases_table(report), counts_table(report), skew_table(report), verdict)
