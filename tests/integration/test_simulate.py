"""``sharetrail simulate`` end to end: a tiny city through the CLI entry point, on SQLite and
PostgreSQL, then checked in the store and against the chain by a second, independent opening; and
the bulk path it records through (``LogService.record_prepared_events``), which must write exactly
the entries the gateway batch path writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from rich.console import Console
from sqlalchemy import func, select
from typer.testing import CliRunner

from api.cli import app
from ledger.canonical import canonical_json
from ledger.errors import Conflict, Forbidden, InvalidInput
from ledger.identity.parties import NewParty
from ledger.identity.uscc import make_uscc
from ledger.log import merkle
from ledger.log.events import AccessEvent, AccessMode, EventKind
from ledger.log.service import MAX_TRANSACTION
from ledger.log.verify import verify
from ledger.runtime import Ledger
from ledger.settings import Settings
from ledger.sharing.catalog import FieldSpec, ResourceSpec
from ledger.sim.city import STATISTICS_BUREAU, Scale
from ledger.sim.run import SimOptions, simulate
from ledger.sim.skew import is_office_hours
from ledger.store.models import Base, LogEntry, Party, Resource, ShareRequest
from ledger.types import OpenType, PartyKind, RequestStatus, ShareType

TINY = ["--departments", "3", "--resources", "5", "--grants", "3", "--events", "3000", "--seed", "7"]


def test_simulate_tiny_city_is_skewed_anchored_and_intact(tmp_path: Path, db_url: str) -> None:
    data_dir = tmp_path / "sim"
    result = CliRunner().invoke(app, ["simulate", *TINY, "--data-dir", str(data_dir), "--db-url", db_url])
    assert result.exit_code == 0, result.output
    assert "verify: INTACT" in result.stdout
    assert "trail indexes" in result.stdout  # the default: an import

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
        # the trail's indexes the events were appended without are all there again
        diff = compare_metadata(MigrationContext.configure(session.connection()), Base.metadata)
        assert diff == []

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


def test_simulate_with_the_producer_process_is_intact(tmp_path: Path) -> None:
    options = SimOptions(
        scale=Scale(departments=3, resources=4, grants=2, events=2500, days=30),
        data_dir=tmp_path / "sim",
        seed=11,
        batch=1000,
        anchor_every=1000,
        producer_process=True,
        defer_indexes=False,  # appended with every index in place: the same city, no index phase
    )
    with (tmp_path / "progress.txt").open("w") as sink:
        report = simulate(options, console=Console(file=sink))
    assert report.intact
    events = next(p for p in report.phases if p.unit == "events")
    assert events.count == 2500 and "2nd process" in events.name
    assert not [p for p in report.phases if "indexes" in p.name]
    assert report.skew.events == 2500 and sum(report.skew.by_accessor.values()) == 2500
    assert report.counts["log entries: access"] + report.counts["log entries: denied"] == 2500
    assert report.counts["anchored size"] == report.counts["log size"]


# -- the bulk path: LogService.record_prepared_events ----------------------------------------------


def _parties(ledger: Ledger) -> tuple[Party, Party]:
    registrar = ledger.parties.get(ledger.bootstrap.registrar_id)
    operator, _ = ledger.parties.register(
        registrar, NewParty(PartyKind.OPERATOR, "平台运营方", make_uscc(71, authority="9"))
    )
    department, _ = ledger.parties.register(
        registrar, NewParty(PartyKind.DEPARTMENT, "贵阳市统计局", make_uscc(72))
    )
    # the catalog the events name: a recorded event must name a published resource, its provider
    # and its level (ledger/log/reported.py)
    ledger.catalog.create_many(
        department,
        [
            ResourceSpec(
                code=f"GY-TJ-{k:03d}",
                name=f"统计资源 {k}",
                format="table",
                share_type=ShareType.CONDITIONAL,
                open_type=OpenType.NONE,
                level=_level(k),
                update_frequency="monthly",
                legal_basis="《中华人民共和国统计法》",
                fields=[FieldSpec("人口"), FieldSpec("户籍地"), FieldSpec("年龄段")],
            )
            for k in range(4)
        ],
    )
    return operator, department


def _level(resource: int) -> int:
    return 1 + resource % 3


def _events(department: Party, first: int, count: int) -> list[AccessEvent]:
    start = datetime(2026, 11, 2, 1, 30, 0, 250_000, tzinfo=UTC)
    return [
        AccessEvent(
            event_id=f"sim-{n:09d}",
            kind=EventKind.DENIED if n % 3 == 0 else EventKind.ACCESS,
            accessor=department.id,
            provider=department.id,
            resource=f"GY-TJ-{n % 4:03d}",
            grant="0x" + f"{n:064x}" if n % 2 else None,
            purpose="statistics",
            fields=["人口", "户籍地", "年龄段"][: 1 + n % 3],
            mode=list(AccessMode)[n % 4],
            record_count=0 if n % 3 == 0 else 10 * n,
            query_hash=f"0x{n + 1:064x}",
            result_hash=None if n % 3 == 0 else f"0x{n + 7:064x}",
            time=start + timedelta(seconds=n),
            gateway="gy-exchange-01",
            reason="out_of_scope" if n % 3 == 0 else None,
            level=_level(n % 4),
        )
        for n in range(first, first + count)
    ]


def test_prepared_events_make_the_same_entries_as_a_gateway_batch(ledger: Ledger) -> None:
    operator, department = _parties(ledger)
    batch = _events(department, 0, 6)
    recorded = ledger.log.record_gateway_events(operator, batch)
    # The same events through the bulk path are retries of the same content: duplicates, same indices.
    again = ledger.log.record_prepared_events(operator, [e.prepare() for e in batch])
    assert [(r.index, r.duplicate) for r in again] == [(r.index, True) for r in recorded]

    fresh = _events(department, 6, 6)
    appended = ledger.log.record_prepared_events(operator, [e.prepare() for e in fresh])
    assert [r.duplicate for r in appended] == [False] * 6
    for result, event in zip([*recorded, *appended], [*batch, *fresh], strict=True):
        stored = ledger.log.log.entry(result.index)
        assert stored.entry == canonical_json(event.leaf(recorded_by=operator.id))
        assert ledger.log.log.leaf_hash(result.index) == merkle.leaf_hash(stored.entry)

    changed = _events(department, 0, 1)[0].model_copy(update={"record_count": 99_999})
    with pytest.raises(Conflict) as caught:
        ledger.log.record_prepared_events(operator, [changed.prepare()])
    assert caught.value.code == "event_id_conflict"


def test_encoded_events_make_the_same_entries_and_trail_columns(ledger: Ledger) -> None:
    """The producer process's flat form (``GatewayEntry.encoded``) appends the very entries and
    indexed trail columns a gateway batch makes, and retries of either match the other."""
    operator, department = _parties(ledger)
    plain, encoded = _events(department, 0, 8), _events(department, 8, 8)
    recorded = ledger.log.record_gateway_events(operator, plain)
    again = ledger.log.record_prepared_events(
        operator, [e.prepare().encoded(recorded_by=operator.id) for e in plain]
    )
    assert [(r.index, r.duplicate) for r in again] == [(r.index, True) for r in recorded]
    appended = ledger.log.record_prepared_events(
        operator, [e.prepare().encoded(recorded_by=operator.id) for e in encoded]
    )
    assert [r.duplicate for r in appended] == [False] * 8
    columns = (
        LogEntry.provider,
        LogEntry.grant_ref,
        LogEntry.purpose,
        LogEntry.mode,
        LogEntry.accessor,
        LogEntry.resource,
        LogEntry.kind,
        LogEntry.time,
    )
    with ledger.store.read() as session:
        rows = {
            idx: (*rest, time.replace(tzinfo=UTC))
            for idx, *rest, time in session.execute(select(LogEntry.idx, *columns))
        }
    for result, event in zip([*recorded, *appended], [*plain, *encoded], strict=True):
        assert ledger.log.log.entry(result.index).entry == canonical_json(event.leaf(recorded_by=operator.id))
        assert rows[result.index] == (
            event.provider,
            event.grant,
            event.purpose,
            event.mode.value,
            event.accessor,
            event.resource,
            event.kind.value,
            event.time,
        )


def test_an_event_encoded_for_another_recorder_is_refused(ledger: Ledger) -> None:
    operator, department = _parties(ledger)
    entry = _events(department, 0, 1)[0].prepare().encoded(recorded_by="operator-other")
    size = ledger.log.log.size()
    with pytest.raises(InvalidInput) as caught:
        ledger.log.record_prepared_events(operator, [entry])
    assert caught.value.code == "recorder_mismatch"
    assert caught.value.message == (
        f"event 'sim-000000000' was encoded for recorder 'operator-other', not {operator.id!r}"
    )
    assert ledger.log.log.size() == size


def test_prepared_events_take_the_gateway_batch_checks(ledger: Ledger) -> None:
    operator, department = _parties(ledger)
    entry = _events(department, 0, 1)[0].prepare()
    size = ledger.log.log.size()
    with pytest.raises(Forbidden) as forbidden:
        ledger.log.record_prepared_events(department, [entry])
    assert forbidden.value.code == "forbidden_role"
    with pytest.raises(InvalidInput) as empty:
        ledger.log.record_prepared_events(operator, [])
    assert empty.value.code == "empty_batch"
    with pytest.raises(InvalidInput) as large:
        ledger.log.record_prepared_events(operator, [entry] * (MAX_TRANSACTION + 1))
    assert large.value.code == "batch_too_large"
    with pytest.raises(InvalidInput) as unknown:
        ledger.log.record_prepared_events(operator, [entry._replace(accessor="no-such-party")])
    assert unknown.value.code == "unknown_party"
    assert ledger.log.log.size() == size  # nothing refused was appended
