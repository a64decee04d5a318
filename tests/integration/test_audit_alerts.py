"""Every alert rule, on real events: the gateway's own and an external platform's batch."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import update

from ledger.audit.alerts import AlertService, Thresholds
from ledger.identity.uscc import make_uscc
from ledger.store.models import Resource, ShareRequest
from tests.integration.test_gateway import BOOT, env, grant  # noqa: F401 - the fixture

CHINA = ZoneInfo("Asia/Shanghai")


def party(e: dict[str, Any], kind: str, seq: int) -> dict[str, str]:
    r = e["client"].post(
        "/v1/parties", json={"kind": kind, "name": kind, "uscc": make_uscc(seq)}, headers=BOOT
    )
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def external(e: dict[str, Any], op: dict[str, str], n: int, **over: Any) -> None:
    """An external exchange platform reports an access (logged as reported, checked by the audit)."""
    body = {
        "event_id": f"ext-{n}",
        "accessor": e["minzheng_id"],
        "provider": e["renshe_id"],
        "resource": e["GY-RS-001"],
        "purpose": "social_assistance",
        "fields": ["district"],
        "mode": "raw",
        "record_count": 10,
        "time": datetime.now(UTC).isoformat(),
        "gateway": "gy-exchange-01",
        **over,
    }
    r = e["client"].post("/v1/access-events", json=[body], headers=op)
    assert r.status_code == 201, r.text


def rules(report: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for alert in report["alerts"]:
        out.setdefault(alert["rule"], []).append(alert)
    return out


def test_alert_rules(env: dict[str, Any]) -> None:  # noqa: F811
    c, ledger = env["client"], env["ledger"]
    op, reg = party(env, "operator", 660), party(env, "regulator", 661)
    now = datetime.now(UTC)
    gid = grant(env, fields=["district"], max_accesses=2)
    external(env, op, 1, grant=gid, time=(now - timedelta(hours=2)).isoformat())  # before valid_from
    external(env, op, 2, grant=gid, fields=["district", "phone"])  # a field outside the grant
    external(env, op, 3, grant=gid, purpose="statistics")  # another purpose; also the 3rd access of 2
    revoked = grant(env, fields=["district"])
    assert (
        c.post(f"/v1/grants/{revoked}/revoke", json={"reason": "停止"}, headers=env["renshe"]).status_code
        == 200
    )
    external(env, op, 4, grant=revoked)
    night = datetime.combine(date.today() - timedelta(days=1), datetime.min.time(), CHINA).replace(hour=2)
    external(env, op, 5, record_count=5000, time=night.isoformat())
    for _ in range(5):
        c.get(f"/v1/data/{env['GY-RS-001']}", headers=env["zhujian"])  # refused: no grant
    with ledger.store.session() as session:
        session.execute(
            update(Resource)
            .where(Resource.id == env["GY-RS-002"])
            .values(updated_at=now - timedelta(days=400))
        )
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
    with ledger.store.session() as session:
        session.execute(
            update(ShareRequest)
            .where(ShareRequest.id == r.json()["id"])
            .values(respond_by=date.today() - timedelta(days=3))
        )

    assert c.get("/v1/audit/alerts", headers=env["minzheng"]).status_code == 403
    bad = c.get(
        "/v1/audit/alerts",
        params={"since": now.isoformat(), "until": (now - timedelta(1)).isoformat()},
        headers=reg,
    )
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_time_range"
    found = rules(c.get("/v1/audit/alerts", headers=reg).json())
    assert {a["grant"] for a in found["outside_grant_window"]} == {gid}
    assert len(found["outside_grant_scope"]) == 1 and "phone" in found["outside_grant_scope"][0]["message"]
    assert [a["grant"] for a in found["purpose_mismatch"]] == [gid]
    assert [a["grant"] for a in found["over_cap"]] == [gid] and len(found["over_cap"][0]["evidence"]) == 1
    assert [a["grant"] for a in found["after_revoke"]] == [revoked] and len(
        found["after_revoke"][0]["evidence"]
    ) == 2
    assert (
        found["denied_burst"][0]["party"] == env["zhujian_id"]
        and len(found["denied_burst"][0]["evidence"]) == 5
    )
    assert found["off_hours_bulk"][0]["evidence"] and "5000 records" in found["off_hours_bulk"][0]["message"]
    assert [a["resource"] for a in found["catalog_stale"]] == [env["GY-RS-002"]]
    assert found["overdue_request"][0]["party"] == env["renshe_id"]
    assert found["outside_grant_window"][0]["severity"] == "high"
    assert "volume_spike" not in found


def spike_base() -> datetime:
    """10:00 Beijing time five days ago: a day's events, minutes apart from here, stay on one
    Beijing day (from ``datetime.now() - 5 days`` they straddled midnight when run near 16:00 UTC)."""
    return datetime.now(CHINA).replace(hour=10, minute=0, second=0, microsecond=0) - timedelta(days=5)


def test_volume_spike_against_own_baseline(env: dict[str, Any]) -> None:  # noqa: F811
    op = party(env, "operator", 662)
    reg_party = env["ledger"].parties.authenticate("st_boot-gateway")
    base = spike_base()
    n = 0
    for day in range(4):
        for _ in range(12 if day == 2 else 1):
            n += 1
            external(env, op, 100 + n, time=(base + timedelta(days=day, minutes=n)).isoformat())
    quiet = AlertService(store=env["ledger"].store, thresholds=Thresholds(spike_min=100))
    assert "volume_spike" not in rules(quiet.evaluate(reg_party))
    sensitive = AlertService(store=env["ledger"].store, thresholds=Thresholds(spike_min=5))
    spikes = rules(sensitive.evaluate(reg_party))["volume_spike"]
    assert len(spikes) == 1 and len(spikes[0]["evidence"]) == 12 and spikes[0]["party"] == env["minzheng_id"]
