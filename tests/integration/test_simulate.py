"""``sharetrail simulate`` end to end: a tiny city through the CLI entry point, on SQLite and
PostgreSQL, then checked in the store and against the chain by a second, independent opening."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select
from typer.testing import CliRunner

from api.cli import app
from ledger.log.verify import verify
from ledger.runtime import Ledger
from ledger.settings import Settings
from ledger.sim.city import STATISTICS_BUREAU
from ledger.sim.skew import is_office_hours
from ledger.store.models import LogEntry, Party, Resource, ShareRequest
from ledger.types import PartyKind, RequestStatus

TINY = ["--departments", "3", "--resources", "5", "--grants", "3", "--events", "3000", "--seed", "7"]


def test_simulate_tiny_city_is_skewed_anchored_and_intact(tmp_path: Path, db_url: str) -> None:
    data_dir = tmp_path / "sim"
    result = CliRunner().invoke(app, ["simulate", *TINY, "--data-dir", str(data_dir), "--db-url", db_url])
    assert result.exit_code == 0, result.output
    assert "verify: INTACT" in result.stdout

    with Ledger.open(Settings(data_dir=data_dir, db_url=db_url)) as ledger, ledger.store.read() as session:
        kinds = dict(session.execute(select(Party.kind, func.count()).group_by(Party.kind)).all())
        assert kinds == {
            PartyKind.REGISTRAR: 1,
            PartyKind.OPERATOR: 1,
            PartyKind.REGULATOR: 1,
            PartyKind.DEPARTMENT: 3,
        }
        assert session.scalar(select(func.count()).select_from(Resource)) == 5
        statuses = session.scalars(select(ShareRequest.status)).all()
        assert statuses.count(RequestStatus.GRANTED) == 3

        gateway = LogEntry.kind.in_(["access", "denied"])
        per_kind = dict(
            session.execute(select(LogEntry.kind, func.count()).where(gateway).group_by(LogEntry.kind)).all()
        )
        assert sum(per_kind.values()) == 3000
        assert 0.005 <= per_kind["denied"] / 3000 <= 0.04  # ~2 % denied

        by_accessor = session.execute(
            select(Party.name, func.count())
            .select_from(LogEntry)
            .join(Party, Party.id == LogEntry.accessor)
            .where(gateway)
            .group_by(Party.name)
            .order_by(func.count().desc())
        ).all()
        assert by_accessor[0][0] == STATISTICS_BUREAU
        assert by_accessor[0][1] > by_accessor[1][1]

        times = [
            t if t.tzinfo else t.replace(tzinfo=UTC)
            for t in session.scalars(select(LogEntry.time).where(gateway))
        ]
        office = sum(is_office_hours(t) for t in times)
        assert office / len(times) >= 0.75
        assert max(times) <= datetime.now(UTC)

        size = ledger.log.log.size()
        workflow = session.scalar(select(func.count()).select_from(LogEntry).where(~gateway)) or 0
        assert workflow > 0 and size == 3000 + workflow  # + requests, decisions, grants
        checkpoint = ledger.log.log.latest_checkpoint()
        assert checkpoint is not None and checkpoint.size == size  # everything anchored

    with Ledger.open(Settings(data_dir=data_dir, db_url=db_url)) as ledger:
        report = verify(ledger.store, ledger.chain, ledger.contracts["Anchor"])
        assert report.intact and report.entries == size and report.anchored_size == size


def test_simulate_refuses_a_ledger_that_is_not_empty(tmp_path: Path) -> None:
    data_dir = tmp_path / "sim"
    args = ["simulate", "--departments", "2", "--resources", "2", "--grants", "0", "--events", "10"]
    first = CliRunner().invoke(app, [*args, "--data-dir", str(data_dir)])
    assert first.exit_code == 0, first.output
    again = CliRunner().invoke(app, [*args, "--data-dir", str(data_dir)])
    assert again.exit_code == 2
    assert "not_empty" in again.output


def test_simulate_rejects_an_impossible_scale(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["simulate", "--departments", "1", "--data-dir", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "departments must be 2..423" in result.output
    assert not (tmp_path / "x").exists()
