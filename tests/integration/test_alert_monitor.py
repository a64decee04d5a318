"""The alert monitor: rules evaluated as events arrive, from a durable cursor, stored and de-duplicated,
acknowledged by a regulator; the time-driven rules checked periodically. Events are recorded through
the real services (the gateway's refusals, an external platform's batches through
``POST /v1/access-events``) on the real embedded chain, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from ledger.audit import monitor as monitor_module
from ledger.audit.monitor import AlertMonitor, MonitorPolicy
from ledger.audit.rules import Thresholds
from ledger.errors import StoreError
from ledger.identity.uscc import make_uscc
from ledger.store.db import Store
from ledger.store.models import AlertCursor, Dispute, LogHead, RaisedAlert, Resource, ShareRequest
from tests.integration.test_audit_alerts import CHINA, external, party, rules, spike_base
from tests.integration.test_gateway import BOOT, env, grant  # noqa: F401 - the fixture

RAISED = "/v1/audit/alerts/raised"
EVENT_RULES = (
    "outside_grant_window",
    "outside_grant_scope",
    "purpose_mismatch",
    "over_cap",
    "after_revoke",
    "denied_burst",
    "off_hours_bulk",
)


def quiet(e: dict[str, Any]) -> AlertMonitor:
    """Stop the app's own monitor thread, so the test drives each pass itself."""
    monitor: AlertMonitor = e["ledger"].alert_monitor
    monitor.stop()
    return monitor


def stored(e: dict[str, Any]) -> list[RaisedAlert]:
    with e["ledger"].store.read() as session:
        return list(session.scalars(select(RaisedAlert).order_by(RaisedAlert.id)))


def by_rule(rows: list[RaisedAlert]) -> dict[str, list[RaisedAlert]]:
    out: dict[str, list[RaisedAlert]] = {}
    for row in rows:
        out.setdefault(row.rule, []).append(row)
    return out


def evidence(row: RaisedAlert) -> list[int]:
    value: list[int] = json.loads(row.evidence_json)
    return value


def cursor(e: dict[str, Any]) -> tuple[int, int]:
    """(the monitor's cursor, the log's size)."""
    with e["ledger"].store.read() as session:
        at = session.scalar(select(AlertCursor.next_index))
        size = session.scalar(select(LogHead.size))
    return int(at or 0), int(size or 0)


def refuse(e: dict[str, Any], n: int) -> None:
    for _ in range(n):  # no grant: the gateway refuses and logs each attempt
        r = e["client"].get(f"/v1/data/{e['GY-RS-001']}", headers=e["zhujian"])
        assert r.status_code == 403, r.text


def test_alerts_are_raised_as_events_arrive(env: dict[str, Any]) -> None:  # noqa: F811
    """Nobody asks for alerts: the app's monitor thread stores them as the events come in."""
    c = env["client"]
    op, reg = party(env, "operator", 670), party(env, "regulator", 671)
    gid = grant(env, fields=["district"], max_accesses=1)
    external(env, op, 1, grant=gid)
    external(env, op, 2, grant=gid, fields=["district", "phone"])  # outside the scope; over the cap
    refuse(env, 5)
    wanted = {"over_cap", "outside_grant_scope", "denied_burst"}
    deadline = time.monotonic() + 60
    while True:
        body = c.get(RAISED, headers=reg).json()
        found = {a["rule"]: a for a in body["items"]}
        if wanted <= set(found) and body["monitor"]["evaluated"] == body["monitor"]["log_size"]:
            break
        assert time.monotonic() < deadline, body
        time.sleep(0.2)
    assert found["over_cap"]["grant"] == gid and found["over_cap"]["evidence_total"] == 1
    assert (
        found["outside_grant_scope"]["severity"] == "high"
        and "phone" in found["outside_grant_scope"]["message"]
    )
    assert (
        found["denied_burst"]["party"] == env["zhujian_id"] and found["denied_burst"]["evidence_total"] == 5
    )
    assert all(a["status"] == "open" and a["acknowledged"] is None for a in body["items"])
    assert c.get("/v1/audit/alerts", headers=reg).status_code == 200  # the on-demand route is unchanged


def test_monitor_finds_what_the_on_demand_rules_find(env: dict[str, Any]) -> None:  # noqa: F811
    """Both paths share the rules: over the same events, every on-demand event alert is stored, with
    the same evidence."""
    monitor = quiet(env)
    c = env["client"]
    op, reg = party(env, "operator", 672), party(env, "regulator", 673)
    now = datetime.now(UTC)
    gid = grant(env, fields=["district"], max_accesses=2)
    external(env, op, 1, grant=gid, time=(now - timedelta(hours=2)).isoformat())  # before valid_from
    external(env, op, 2, grant=gid, fields=["district", "phone"])
    external(env, op, 3, grant=gid, purpose="statistics")
    revoked = grant(env, fields=["district"])
    r = c.post(f"/v1/grants/{revoked}/revoke", json={"reason": "停止"}, headers=env["renshe"])
    assert r.status_code == 200, r.text
    external(env, op, 4, grant=revoked)
    night = datetime.combine(date.today() - timedelta(days=1), datetime.min.time(), CHINA).replace(hour=2)
    external(env, op, 5, record_count=5000, time=night.isoformat())
    refuse(env, 5)
    assert monitor.catch_up() > 0
    assert cursor(env)[0] == cursor(env)[1]
    on_demand = rules(c.get("/v1/audit/alerts", headers=reg).json())
    kept = by_rule(stored(env))
    for rule in EVENT_RULES:
        assert len(on_demand[rule]) == len(kept[rule]) == 1, rule
        assert on_demand[rule][0]["evidence"] == evidence(kept[rule][0]), rule
        assert on_demand[rule][0]["grant"] == kept[rule][0].grant_ref, rule
        assert on_demand[rule][0]["party"] == kept[rule][0].party, rule
        assert on_demand[rule][0]["message"] == kept[rule][0].message, rule
    revoke, access = evidence(kept["after_revoke"][0])
    assert (kept["after_revoke"][0].first_evidence, kept["after_revoke"][0].last_evidence) == (revoke, access)
    assert revoke < access


def test_restart_resumes_from_the_cursor_without_duplicates(env: dict[str, Any]) -> None:  # noqa: F811
    monitor = quiet(env)
    op = party(env, "operator", 674)
    gid = grant(env, fields=["district"], max_accesses=1)
    for n in (1, 2, 3):
        external(env, op, n, grant=gid)
    monitor.catch_up()
    before = stored(env)
    [cap] = by_rule(before)["over_cap"]
    assert evidence(cap) == [cap.first_evidence, cap.last_evidence] and cap.evidence_count == 2
    at, size = cursor(env)
    assert at == size

    # A restart: a new monitor on a new engine, nothing in memory but the database.
    restarted = AlertMonitor(store=Store(env["ledger"].store.url), policy=MonitorPolicy(batch=2))
    try:
        assert restarted.catch_up() == 0  # nothing evaluated twice
        assert [(r.id, r.evidence_json) for r in stored(env)] == [(r.id, r.evidence_json) for r in before]
        external(env, op, 4, grant=gid)
        external(env, op, 5, grant=gid)
        assert restarted.catch_up() == cursor(env)[1] - at  # exactly the new entries
        after = by_rule(stored(env))
        assert len(after["over_cap"]) == 1 and after["over_cap"][0].id == cap.id  # extended, not doubled
        assert after["over_cap"][0].evidence_count == 4
        assert "5 accesses under a grant capped at 1" in after["over_cap"][0].message
        assert len(stored(env)) == len(before)
    finally:
        restarted.store.close()


def test_a_pass_that_fails_before_its_commit_changes_nothing(
    env: dict[str, Any],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monitor = quiet(env)
    op = party(env, "operator", 675)
    gid = grant(env, fields=["district"], max_accesses=1)
    monitor.catch_up()
    at = cursor(env)[0]
    external(env, op, 1, grant=gid)
    external(env, op, 2, grant=gid)  # over the cap

    calls = []

    def fail(*args: Any) -> None:
        calls.append(args)
        raise StoreError("database unavailable: disk full")

    monkeypatch.setattr(monitor_module, "_store", fail)
    with pytest.raises(StoreError):
        monitor.process()
    assert calls and cursor(env)[0] == at and stored(env) == []
    monkeypatch.undo()
    assert monitor.catch_up() == 2
    [cap] = by_rule(stored(env))["over_cap"]
    assert cap.evidence_count == 1 and cursor(env)[0] == at + 2


def test_a_monitor_that_lost_the_race_drops_its_batch(
    env: dict[str, Any],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two monitors (a leader whose lock went with its connection, and the next one): the one that
    finds the cursor moved when it comes to commit drops its batch; nothing is stored twice."""
    first = quiet(env)
    second = AlertMonitor(store=env["ledger"].store)
    op = party(env, "operator", 676)
    gid = grant(env, fields=["district"], max_accesses=1)
    first.catch_up()
    at = cursor(env)[0]
    external(env, op, 1, grant=gid)
    external(env, op, 2, grant=gid)
    evaluate = first._evaluate

    def overtaken(*args: Any) -> Any:
        found = evaluate(*args)
        assert second.process() == 2  # the other monitor commits the same batch meanwhile
        return found

    monkeypatch.setattr(first, "_evaluate", overtaken)
    assert first.process() == 0
    [cap] = by_rule(stored(env))["over_cap"]
    assert cap.evidence_count == 1 and cursor(env)[0] == at + 2
    monkeypatch.undo()
    assert first.catch_up() == 0 and len(stored(env)) == 1


def test_de_duplication_and_acknowledgement(env: dict[str, Any]) -> None:  # noqa: F811
    monitor = quiet(env)
    c = env["client"]
    op, reg = party(env, "operator", 677), party(env, "regulator", 678)
    gid = grant(env, fields=["district"], max_accesses=1)
    for n in (1, 2, 3):  # one batch: two accesses over the cap
        external(env, op, n, grant=gid)
    monitor.catch_up()
    external(env, op, 4, grant=gid)  # a later batch: the same grant over its cap again
    monitor.catch_up()
    [cap] = by_rule(stored(env))["over_cap"]
    assert cap.evidence_count == 3 and len(evidence(cap)) == 3

    listed = c.get(RAISED, params={"rule": "over_cap"}, headers=reg).json()["items"]
    assert [a["id"] for a in listed] == [cap.id]
    alert_id = cap.id
    ack = f"/v1/audit/alerts/{alert_id}/acknowledge"

    def refused(r: Any, status: int, code: str) -> None:
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), r.text

    refused(c.post(ack, json={"note": "已约谈"}, headers=env["minzheng"]), 403, "forbidden_role")
    refused(c.post(ack, json={"note": "已约谈"}, headers=BOOT), 403, "forbidden_role")  # registrar
    refused(c.post(ack, json={"note": "已约谈"}), 401, "missing_token")
    refused(c.post(ack, json={}, headers=reg), 422, "validation_failed")
    refused(c.post(ack, json={"note": ""}, headers=reg), 422, "validation_failed")
    refused(c.post(ack, json={"note": "x" * 2001}, headers=reg), 422, "validation_failed")
    refused(c.post(ack, json={"note": "x", "extra": 1}, headers=reg), 422, "validation_failed")
    refused(c.post(ack, json={"note": "   "}, headers=reg), 422, "note_required")
    refused(
        c.post("/v1/audit/alerts/999999/acknowledge", json={"note": "x"}, headers=reg), 404, "alert_not_found"
    )
    refused(
        c.post("/v1/audit/alerts/0/acknowledge", json={"note": "x"}, headers=reg), 422, "validation_failed"
    )
    refused(
        c.post("/v1/audit/alerts/abc/acknowledge", json={"note": "x"}, headers=reg), 422, "validation_failed"
    )
    r = c.post(ack, json={"note": " 已约谈民政局，超限访问系平台重复上报 "}, headers=reg)
    assert r.status_code == 200, r.text
    done = r.json()
    regulator_id = c.get("/v1/parties/me", headers=reg).json()["id"]
    assert done["status"] == "acknowledged" and done["acknowledged"]["by"] == regulator_id
    assert done["acknowledged"]["note"] == "已约谈民政局，超限访问系平台重复上报"
    refused(c.post(ack, json={"note": "again"}, headers=reg), 409, "already_acknowledged")

    external(env, op, 5, grant=gid)  # over the cap after the acknowledgement: a new alert
    monitor.catch_up()
    caps = by_rule(stored(env))["over_cap"]
    assert [(a.status, a.evidence_count) for a in caps] == [("acknowledged", 3), ("open", 1)]
    assert caps[0].id == alert_id and caps[0].note == "已约谈民政局，超限访问系平台重复上报"


def test_listing_filters_and_pages(env: dict[str, Any]) -> None:  # noqa: F811
    monitor = quiet(env)
    c = env["client"]
    op, reg = party(env, "operator", 679), party(env, "regulator", 680)
    gid = grant(env, fields=["district"], max_accesses=1)
    external(env, op, 1, grant=gid, fields=["district", "phone"])
    external(env, op, 2, grant=gid, purpose="statistics")
    refuse(env, 5)
    monitor.catch_up()
    everything = c.get(RAISED, headers=reg).json()
    ids = [a["id"] for a in everything["items"]]
    assert len(ids) == 4 and ids == sorted(ids, reverse=True) and everything["next_before"] is None
    assert everything["monitor"]["evaluated"] == everything["monitor"]["log_size"]
    pages, before = [], None
    while True:
        params: dict[str, Any] = {"limit": 1} | ({"before": before} if before is not None else {})
        page = c.get(RAISED, params=params, headers=reg).json()
        pages += [a["id"] for a in page["items"]]
        before = page["next_before"]
        if before is None:
            break
    assert pages == ids

    def ids_for(**params: Any) -> set[int]:
        r = c.get(RAISED, params=params, headers=reg)
        assert r.status_code == 200, r.text
        return {a["id"] for a in r.json()["items"]}

    high = ids_for(severity="high")
    assert {a["rule"] for a in everything["items"] if a["id"] in high} == {"outside_grant_scope", "over_cap"}
    assert len(ids_for(rule="denied_burst")) == 1
    assert ids_for(party=env["zhujian_id"]) == ids_for(rule="denied_burst")
    assert ids_for(status="open") == set(ids) and ids_for(status="acknowledged") == set()
    assert ids_for(since=(datetime.now(UTC) + timedelta(hours=1)).isoformat()) == set()
    assert ids_for(since=(datetime.now(UTC) - timedelta(hours=1)).isoformat()) == set(ids)
    assert ids_for(since="2020-01-01T00:00:00") == set(ids)  # no zone: UTC
    refusals: list[tuple[dict[str, Any], int, str]] = [
        ({"status": "closed"}, 422, "validation_failed"),
        ({"rule": "nope"}, 422, "validation_failed"),
        ({"severity": "urgent"}, 422, "validation_failed"),
        ({"limit": 0}, 422, "validation_failed"),
        ({"limit": 501}, 422, "validation_failed"),
        ({"before": -1}, 422, "validation_failed"),
        ({"since": "yesterday"}, 422, "validation_failed"),
        ({"since": "0001-01-01T00:00:00+05:00"}, 422, "invalid_time"),
        ({"party": "x" * 81}, 422, "validation_failed"),
    ]
    for params, status, code in refusals:
        r = c.get(RAISED, params=params, headers=reg)
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), (params, r.text)
    r = c.get(RAISED, headers=env["minzheng"])
    assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden_role")
    assert c.get(RAISED, headers=BOOT).status_code == 200  # the registrar reads them too


def test_counting_rules_across_batches(env: dict[str, Any]) -> None:  # noqa: F811
    """A burst and a spike that straddle batch boundaries are found once, with all their evidence."""
    quiet(env)
    op = party(env, "operator", 681)
    monitor = AlertMonitor(
        store=env["ledger"].store, thresholds=Thresholds(spike_min=5), policy=MonitorPolicy(batch=2)
    )
    monitor.catch_up()
    base = spike_base()
    n = 0
    for day in range(4):
        for _ in range(12 if day == 3 else 1):
            n += 1
            external(env, op, 200 + n, time=(base + timedelta(days=day, minutes=n)).isoformat())
    refuse(env, 6)
    monitor.catch_up()
    found = by_rule(stored(env))
    [spike] = found["volume_spike"]
    assert spike.party == env["minzheng_id"] and spike.evidence_count == 12 and len(evidence(spike)) == 12
    assert "12 accesses on" in spike.message
    [burst] = found["denied_burst"]
    assert burst.party == env["zhujian_id"] and burst.evidence_count == 6


def test_time_driven_rules_are_checked_periodically(env: dict[str, Any]) -> None:  # noqa: F811
    monitor = quiet(env)
    c, ledger = env["client"], env["ledger"]
    reg = party(env, "regulator", 682)
    now = datetime.now(UTC)
    r = c.post(
        "/v1/share-requests",
        json={
            "resource_id": env["GY-RS-001"],
            "purpose": {"code": "statistics", "text": "x"},
            "legal_basis": "x",
            "scope": {
                "fields": ["district"],
                "valid_from": now.isoformat(),
                "valid_until": (now + timedelta(days=9)).isoformat(),
            },
        },
        headers=env["zhujian"],
    )
    assert r.status_code == 201, r.text
    request_id = r.json()["id"]
    d = c.post(
        "/v1/disputes",
        json={"resource_id": env["GY-RS-002"], "reason": "区县字段有误"},
        headers=env["minzheng"],
    )
    assert d.status_code == 201, d.text
    with ledger.store.session() as session:
        session.execute(
            update(ShareRequest)
            .where(ShareRequest.id == request_id)
            .values(respond_by=date.today() - timedelta(days=3))
        )
        session.execute(
            update(Resource)
            .where(Resource.id == env["GY-RS-002"])
            .values(updated_at=now - timedelta(days=400))
        )
    with ledger.store.session() as session:
        session.execute(
            update(Dispute)
            .where(Dispute.id == d.json()["id"])
            .values(respond_by=date.today() - timedelta(days=1))
        )
    assert monitor.check_deadlines() == 3
    found = by_rule(stored(env))
    assert (
        request_id in found["overdue_request"][0].message
        and found["overdue_request"][0].party == env["renshe_id"]
    )
    assert d.json()["id"] in found["overdue_dispute"][0].message
    assert found["catalog_stale"][0].resource == env["GY-RS-002"]
    assert all(not evidence(a) and a.first_evidence is None for rows in found.values() for a in rows)
    assert monitor.check_deadlines() == 0  # still overdue: the same alerts, nothing new
    with ledger.store.read() as session:
        assert session.scalar(select(AlertCursor.deadlines_at)) is not None

    ack = f"/v1/audit/alerts/{found['overdue_request'][0].id}/acknowledge"
    assert c.post(ack, json={"note": "已督办"}, headers=reg).status_code == 200
    assert monitor.check_deadlines() == 0  # acknowledged, still overdue: not raised again
    with ledger.store.session() as session:  # maintained, then neglected again: a new episode
        session.execute(
            update(Resource)
            .where(Resource.id == env["GY-RS-002"])
            .values(updated_at=now - timedelta(days=380))
        )
    assert monitor.check_deadlines() == 1
    assert len(by_rule(stored(env))["catalog_stale"]) == 2


def test_the_loop_checks_deadlines_without_being_asked(env: dict[str, Any]) -> None:  # noqa: F811
    """The app's monitor thread evaluates the time-driven rules on its own (first pass at start)."""
    monitor = quiet(env)
    with env["ledger"].store.session() as session:
        session.execute(
            update(Resource)
            .where(Resource.id == env["GY-RS-001"])
            .values(updated_at=datetime.now(UTC) - timedelta(days=400))
        )
    monitor.policy = MonitorPolicy(interval=0.1, deadline_interval=0.1)
    monitor.start()
    try:
        deadline = time.monotonic() + 30
        while "catalog_stale" not in by_rule(stored(env)):
            assert time.monotonic() < deadline, monitor.last_error
            time.sleep(0.1)
    finally:
        monitor.stop()
    with env["ledger"].store.read() as session:
        assert session.scalar(select(func.count()).select_from(RaisedAlert)) == 1


def test_dashboard_shows_the_open_alerts(env: dict[str, Any]) -> None:  # noqa: F811
    """The console's regulator dashboard: open alerts by severity and the latest, zh-CN then English."""
    monitor = quiet(env)
    c = env["client"]
    op = party(env, "operator", 683)
    token = c.post(
        "/v1/parties", json={"kind": "regulator", "name": "监管", "uscc": make_uscc(684)}, headers=BOOT
    ).json()["token"]
    gid = grant(env, fields=["district"], max_accesses=1)
    external(env, op, 1, grant=gid)
    external(env, op, 2, grant=gid)
    monitor.catch_up()
    c.cookies.clear()
    assert c.post("/console/login", data={"token": token}, follow_redirects=False).status_code == 303
    try:
        page = c.get("/console/dashboard")
        assert page.status_code == 200, page.text
        assert "实时预警（待处理）" in page.text and "超过访问次数上限" in page.text
        assert 'data-testid="open-alerts">1<' in page.text
        english = c.get("/console/dashboard?lang=en").text
        assert "Open alerts (raised as events arrive)" in english and "Over the access cap" in english
    finally:
        c.cookies.clear()
