"""``POST /v1/access-events`` records only events that name something real (ledger/log/reported.py):
a vocabulary purpose, a published catalog entry, its provider and its level — and only well-typed
ones (strict integers, RFC 3339 times, a whole event id). Each refusal is asserted with its exact
status, code and the event it names, and a refused batch leaves the log as it was; on SQLite and
PostgreSQL, through the real app on the embedded chain."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select

from api.app import create_app
from ledger.errors import InvalidInput
from ledger.identity.uscc import make_uscc
from ledger.log.events import AccessEvent, EncodedEntry, GatewayEntry
from ledger.log.reported import RefusedEvent
from ledger.runtime import Ledger
from ledger.settings import Settings
from ledger.store.models import LeafRecord
from tests.support.catalog import publish
from tests.support.world import resource_body

BOOT = {"Authorization": "Bearer st_boot-checks"}
WHEN = "2026-11-21T02:30:00+08:00"


@pytest.fixture
def env(tmp_path: Path, db_url: str) -> Iterator[dict[str, Any]]:
    """The police bureau provides GY-GA-001 (level 2) and GY-GA-004 (level 4); GY-GA-009 awaits
    the signature of its first version; the civil-affairs bureau takes data; an enterprise exists."""
    settings = Settings(
        data_dir=tmp_path / "d", db_url=db_url, bootstrap_token=BOOT["Authorization"][7:], anchor_loop=False
    )
    app = create_app(settings)
    with TestClient(app) as client:
        out: dict[str, Any] = {"client": client, "ledger": app.state.ledger}
        for n, who in enumerate(("operator", "police", "minzheng", "enterprise", "regulator")):
            kind = {"police": "department", "minzheng": "department"}.get(who, who)
            r = client.post(
                "/v1/parties", json={"kind": kind, "name": who, "uscc": make_uscc(310 + n)}, headers=BOOT
            )
            assert r.status_code == 201, r.text
            out[who] = {"Authorization": f"Bearer {r.json()['token']}"}
            out[f"{who}_id"] = r.json()["id"]
        out["GY-GA-001"] = publish(client, out["police"], "GY-GA-001")["id"]
        out["GY-GA-004"] = publish(client, out["police"], "GY-GA-004", level=4)["id"]
        unsigned = {**resource_body("GY-GA-009"), "signing": "client"}
        r = client.post("/v1/resources", json=unsigned, headers=out["police"])
        assert r.status_code == 201 and r.json()["version"] == 0, r.text
        yield out


def ev(env: dict[str, Any], event_id: str = "ok-1", **over: Any) -> dict[str, Any]:
    base = {
        "event_id": event_id,
        "accessor": env["minzheng_id"],
        "provider": env["police_id"],
        "resource": "GY-GA-001",
        "purpose": "social_assistance",
        "fields": ["name"],
        "mode": "masked",
        "record_count": 3,
        "time": WHEN,
        "gateway": "exchange-platform-1",
        "level": 2,
    }
    return {k: v for k, v in {**base, **over}.items() if v is not None}


def post(env: dict[str, Any], events: Any) -> Any:
    return env["client"].post("/v1/access-events", json=events, headers=env["operator"])


def log_size(env: dict[str, Any]) -> int:
    size: int = env["ledger"].log.log.size()
    return size


def test_real_events_are_recorded(env: dict[str, Any]) -> None:
    r = post(
        env,
        [
            ev(env, "by-code"),
            ev(env, "by-id", resource=env["GY-GA-001"]),
            ev(env, "no-provider-no-level", provider=None, level=None),
            # a refused attempt that named no purpose is logged as the gateway logs one
            ev(env, "denied", kind="denied", reason="no_grant", purpose="unspecified", record_count=0),
        ],
    )
    assert r.status_code == 201, r.text
    assert [x["index"] for x in r.json()] == [0, 1, 2, 3]
    entries = env["client"].get("/v1/log/entries?start=0&end=4", headers=env["regulator"]).json()
    assert [e["entry"]["resource"] for e in entries] == [
        "GY-GA-001",
        env["GY-GA-001"],
        "GY-GA-001",
        "GY-GA-001",
    ]
    assert entries[0]["entry"]["record_count"] == 3 and entries[0]["entry"]["level"] == 2


Over = Callable[[dict[str, Any]], dict[str, Any]]
REFUSED: list[tuple[str, Over, str, str]] = [
    # name, the bad event's fields, code, field named in the message
    ("purpose outside the vocabulary", lambda e: {"purpose": "NOT-A-PURPOSE"}, "unknown_purpose", "purpose"),
    ("formula as purpose", lambda e: {"purpose": "+cmd"}, "unknown_purpose", "purpose"),
    ("'unspecified' on an access", lambda e: {"purpose": "unspecified"}, "unknown_purpose", "purpose"),
    (
        "resource not in the catalog",
        lambda e: {"resource": "nonexistent-res"},
        "unknown_resource",
        "resource",
    ),
    ("formula as resource", lambda e: {"resource": "@SUM(1)"}, "unknown_resource", "resource"),
    (
        "level 4 on a made-up resource",
        lambda e: {"resource": "GY-MADE-UP", "level": 4},
        "unknown_resource",
        "resource",
    ),
    ("first version not signed", lambda e: {"resource": "GY-GA-009"}, "not_published", "resource"),
    (
        "enterprise as the police's provider",
        lambda e: {"provider": e["enterprise_id"]},
        "provider_mismatch",
        "provider",
    ),
    ("the accessor as provider", lambda e: {"provider": e["minzheng_id"]}, "provider_mismatch", "provider"),
    ("unknown provider", lambda e: {"provider": "nobody"}, "unknown_party", "provider"),
    ("unknown accessor", lambda e: {"accessor": "nobody"}, "unknown_party", "accessor"),
    ("level 4 on a level-2 resource", lambda e: {"level": 4}, "level_mismatch", "level"),
    (
        "level 2 on a level-4 resource",
        lambda e: {"resource": "GY-GA-004", "level": 2},
        "level_mismatch",
        "level",
    ),
]


def test_events_naming_nothing_real_are_refused_by_index_and_id(env: dict[str, Any]) -> None:
    """The whole batch is refused with 422 and a code naming the problem; the message names the
    event as request validation does (``<index>.<field>``) and its event_id."""
    for name, over, code, field in REFUSED:
        r = post(env, [ev(env, "fine-0"), ev(env, "bad-1", **over(env))])
        assert r.status_code == 422, (name, r.text)
        error = r.json()["error"]
        assert error["code"] == code, (name, error)
        assert error["message"].startswith(f"1.{field}: "), (name, error)
        assert "'bad-1'" in error["message"], (name, error)
    assert log_size(env) == 0  # nothing of a refused batch was appended
    assert post(env, [ev(env, "fine-0")]).status_code == 201  # and the good event alone goes in


def test_the_first_bad_event_of_the_batch_is_named(env: dict[str, Any]) -> None:
    r = post(env, [ev(env, "a"), ev(env, "b", level=3), ev(env, "c", purpose="nope")])
    assert (r.status_code, r.json()["error"]["code"]) == (422, "level_mismatch")
    assert r.json()["error"]["message"] == "1.level: resource GY-GA-001 is level 2, not 3 (event_id 'b')"


LOOSE: list[tuple[str, dict[str, Any], str]] = [
    # name, the bad field, the field the validation error names
    ("boolean count", {"record_count": True}, "record_count"),
    ("string count", {"record_count": "5"}, "record_count"),
    ("float count", {"record_count": 5.0}, "record_count"),
    ("boolean level", {"level": True}, "level"),
    ("string level", {"level": "2"}, "level"),
    ("boolean chain time", {"chain_time": True}, "chain_time"),
    ("string chain time", {"chain_time": "1700000000"}, "chain_time"),
    ("epoch seconds", {"time": 1700000000}, "time"),
    ("epoch seconds as a string", {"time": "1700000000"}, "time"),
    ("fractional epoch", {"time": 1700000000.5}, "time"),
    ("boolean time", {"time": True}, "time"),
    ("a date only", {"time": "2026-11-21"}, "time"),
    ("a space for T", {"time": "2026-11-21 02:30:00+08:00"}, "time"),
    ("non-ASCII digits", {"time": "٢٠٢٦-11-21T02:30:00Z"}, "time"),
    ("event id with a trailing newline", {"event_id": "ok-1\n"}, "event_id"),
    ("event id with a newline inside", {"event_id": "ok\n1"}, "event_id"),
]


def test_loose_types_are_refused(env: dict[str, Any]) -> None:
    for name, over, field in LOOSE:
        r = post(env, [ev(env, **over)])
        assert r.status_code == 422, (name, r.text)
        error = r.json()["error"]
        assert error["code"] == "validation_failed", (name, error)
        assert error["details"][0]["loc"] == ["body", "0", field], (name, error)
    assert log_size(env) == 0
    r = post(env, [ev(env, "ok-1", record_count=5, chain_time=1700000000, time="2026-11-20T18:30:00.250Z")])
    assert r.status_code == 201, r.text
    entry = env["client"].get("/v1/log/entries?start=0&end=1", headers=env["regulator"]).json()[0]["entry"]
    assert entry["record_count"] == 5 and entry["chain_time"] == 1700000000
    assert entry["time"] == "2026-11-20T18:30:00.250Z" and entry["event_id"] == "ok-1"


def test_an_access_names_one_authority() -> None:
    fields: dict[str, Any] = {"accessor": "a", "resource": "r", "purpose": "statistics", "time": WHEN}
    both = {"grant": "0x" + "00" * 32, "contract": "0x" + "11" * 32}
    with pytest.raises(ValueError, match="an access is under a grant or an open contract, not both"):
        AccessEvent.model_validate({"event_id": "e-1", "gateway": "g", **fields, **both})


def test_an_event_id_with_a_newline_is_not_another_id() -> None:
    """``^…$`` with ``re.match`` let ``"e-1\\n"`` through as an id distinct from ``"e-1"``."""
    fields: dict[str, Any] = {"accessor": "a", "resource": "r", "purpose": "statistics", "time": WHEN}
    assert AccessEvent.model_validate({"event_id": "e-1", "gateway": "g", **fields}).event_id == "e-1"
    for bad in ("e-1\n", "e-1\r", "\ne-1", "e-1\n\n"):
        with pytest.raises(ValueError, match="event_id"):
            AccessEvent.model_validate({"event_id": bad, "gateway": "g", **fields})


def test_a_level_4_resource_is_recorded_on_chain_even_without_the_level(env: dict[str, Any]) -> None:
    r = post(env, [ev(env, "high", resource="GY-GA-004", level=None), ev(env, "low", level=None)])
    assert r.status_code == 201, r.text
    high, low = (x["index"] for x in r.json())
    ledger: Ledger = env["ledger"]
    with ledger.store.read() as session:
        recorded = set(session.scalars(select(LeafRecord.idx)))
    assert high in recorded and low not in recorded


def test_the_bulk_path_takes_the_same_checks(env: dict[str, Any]) -> None:
    """``record_prepared_events`` (the simulator's path) refuses the same events, prepared or encoded."""
    ledger: Ledger = env["ledger"]
    operator = ledger.parties.get(env["operator_id"])
    good = AccessEvent.model_validate(ev(env, "g"))
    bad_purpose = AccessEvent.model_validate(ev(env, "p", purpose="NOT-A-PURPOSE"))
    bad_resource = AccessEvent.model_validate(ev(env, "r", resource="nonexistent-res"))
    cases: list[tuple[list[GatewayEntry | EncodedEntry], str, int]] = [
        ([good.prepare(), bad_purpose.prepare()], "unknown_purpose", 1),
        ([bad_purpose.prepare().encoded(recorded_by=operator.id)], "unknown_purpose", 0),
        (
            [good.prepare(), good.prepare()._replace(event_id="x"), bad_resource.prepare()],
            "unknown_resource",
            2,
        ),
        ([bad_resource.prepare().encoded(recorded_by=operator.id)], "unknown_resource", 0),
    ]
    for batch, code, index in cases:
        with pytest.raises(RefusedEvent) as refused:
            ledger.log.record_prepared_events(operator, batch)
        assert isinstance(refused.value, InvalidInput)
        assert (refused.value.code, refused.value.index) == (code, index)
        assert refused.value.event_id == batch[index].event_id
    assert log_size(env) == 0


def test_one_catalog_query_per_batch(env: dict[str, Any]) -> None:
    """The checks read the batch's distinct resources in one statement, not one per event."""
    ledger: Ledger = env["ledger"]
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "FROM resources" in statement:
            statements.append(statement)

    # one resource named two ways (by code and by id): two distinct names, one look-up
    events = [
        ev(env, f"many-{i}", resource=("GY-GA-001" if i % 2 else env["GY-GA-001"])) for i in range(1000)
    ]
    event.listen(ledger.store.engine, "before_cursor_execute", seen)
    try:
        r = post(env, events)
    finally:
        event.remove(ledger.store.engine, "before_cursor_execute", seen)
    assert r.status_code == 201, r.text
    assert len(statements) == 1, statements


def test_trail_csv_exports_do_not_carry_formulas(env: dict[str, Any]) -> None:
    """A party named like a formula, and an exchange platform's free text (fields, denial reason),
    come out of ``GET /v1/audit/trail?format=csv`` and ``/console/trail.csv`` as quoted text."""
    client = env["client"]
    evil = '=HYPERLINK("http://evil","x")'
    r = client.post(
        "/v1/parties", json={"kind": "enterprise", "name": evil, "uscc": make_uscc(390)}, headers=BOOT
    )
    assert r.status_code == 201, r.text
    taker = r.json()["id"]
    events = [
        ev(env, "csv-1", accessor=taker, fields=["=1+1", "name"]),
        ev(env, "csv-2", accessor=taker, kind="denied", reason="@SUM(1)", record_count=0),
    ]
    assert post(env, events).status_code == 201
    api = client.get("/v1/audit/trail", params={"format": "csv", "party": taker}, headers=env["regulator"])
    assert api.status_code == 200, api.text
    client.post(
        "/console/login", data={"token": env["regulator"]["Authorization"][7:]}, follow_redirects=False
    )
    console = client.get("/console/trail.csv", params={"party": taker})
    assert console.status_code == 200, console.text
    for body in (api.text, console.text):
        rows = list(csv.DictReader(io.StringIO(body.lstrip("\ufeff"))))
        assert {row["accessor_name"] for row in rows} == {"'" + evil}
        by_kind = {row["kind"]: row for row in rows}
        assert by_kind["access"]["fields"] == "'=1+1 name"
        assert by_kind["denied"]["reason"] == "'@SUM(1)"
        cells = [cell for row in csv.reader(io.StringIO(body.lstrip("\ufeff"))) for cell in row]
        assert not [cell for cell in cells if cell.startswith(("=", "+", "-", "@", "\t", "\r"))]
