"""Statistics and scorecards (考核) through the API, on SQLite and PostgreSQL (the grouping is SQL)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import update

from ledger.audit.stats import WEIGHTS, score
from ledger.identity.uscc import make_uscc
from ledger.store.models import ResourceVersion, ShareRequest
from tests.integration.test_gateway import BOOT, env, grant  # noqa: F401 - the fixture

CHINA = ZoneInfo("Asia/Shanghai")


def party(e: dict[str, Any], kind: str, seq: int) -> dict[str, str]:
    r = e["client"].post(
        "/v1/parties", json={"kind": kind, "name": f"{kind} {seq}", "uscc": make_uscc(seq)}, headers=BOOT
    )
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def reported(e: dict[str, Any], op: dict[str, str], event_id: str, when: datetime, **over: Any) -> None:
    """An access reported by an external exchange platform (logged as reported)."""
    body = {
        "event_id": event_id,
        "accessor": e["minzheng_id"],
        "provider": e["renshe_id"],
        "resource": e["GY-RS-001"],
        "purpose": "social_assistance",
        "fields": ["district"],
        "mode": "raw",
        "record_count": 1,
        "time": when.isoformat(),
        "gateway": "gy-exchange-01",
        **over,
    }
    r = e["client"].post("/v1/access-events", json=[body], headers=op)
    assert r.status_code == 201, r.text


def error(r: Any) -> tuple[int, str]:
    return r.status_code, r.json()["error"]["code"]


def seed(env: dict[str, Any]) -> dict[str, Any]:  # noqa: F811
    """Six exchanges in three Beijing months, a refusal, an overdue request, two disputes (one
    answered), a catalog entry not maintained for 400 days."""
    c, ledger = env["client"], env["ledger"]
    op = party(env, "operator", 670)
    gid = grant(env, fields=["district"])
    for _ in range(3):
        r = c.get(f"/v1/data/{env['GY-RS-001']}", params={"grant": gid}, headers=env["minzheng"])
        assert r.status_code == 200, r.text
    assert c.get(f"/v1/data/{env['GY-RS-001']}", headers=env["zhujian"]).status_code == 403  # refused
    reported(env, op, "sept", datetime(2026, 9, 15, 10, tzinfo=CHINA))
    # 20:00 UTC on 30 September is 04:00 on 1 October in Beijing: an October exchange
    reported(env, op, "oct", datetime(2026, 9, 30, 20, tzinfo=UTC), accessor=env["zhujian_id"])
    # no provider in the event: its resource (named by catalog code) says whose data it was
    reported(env, op, "nocode", datetime.now(UTC), provider=None, resource="GY-RS-002")
    now = datetime.now(UTC)
    pending = c.post(
        "/v1/share-requests",
        json={
            "resource_id": env["GY-RS-001"],
            "purpose": {"code": "statistics", "text": "统计分析"},
            "legal_basis": "《统计法》",
            "scope": {
                "fields": ["district"],
                "valid_from": now.isoformat(),
                "valid_until": (now + timedelta(days=9)).isoformat(),
            },
        },
        headers=env["zhujian"],
    )
    assert pending.status_code == 201 and pending.json()["status"] == "pending", pending.text
    with ledger.store.session() as session:
        session.execute(
            update(ShareRequest)
            .where(ShareRequest.id == pending.json()["id"])
            .values(respond_by=date.today() - timedelta(days=3))
        )
        session.execute(
            update(ResourceVersion)
            .where(ResourceVersion.resource_id == env["GY-RS-002"])
            .values(created_at=now - timedelta(days=400))
        )
    disputes = []
    for reason in ("district 字段有误", "参保状态过期"):
        r = c.post(
            "/v1/disputes", json={"resource_id": env["GY-RS-001"], "reason": reason}, headers=env["minzheng"]
        )
        assert r.status_code == 201, r.text
        disputes.append(r.json()["id"])
    r = c.post(f"/v1/disputes/{disputes[0]}/answer", json={"answer": "核实无误"}, headers=env["renshe"])
    assert r.status_code == 200, r.text
    return {"regulator": party(env, "regulator", 671), "grant": gid}


def test_statistics_and_scorecards(env: dict[str, Any]) -> None:  # noqa: F811
    c = env["client"]
    seeded = seed(env)
    reg = seeded["regulator"]
    this_month = datetime.now(CHINA).strftime("%Y-%m")

    body = c.get("/v1/audit/statistics", headers=reg).json()
    assert body["period"] == {"since": None, "until": None}
    assert set(body) == {"period", "exchanges", "scorecards"}
    ex = body["exchanges"]
    assert ex["by_department"] == [{"party_id": env["renshe_id"], "name": "renshe", "count": 6}]
    assert ex["by_resource"] == [
        {
            "resource_id": env["GY-RS-001"],
            "code": "GY-RS-001",
            "name": "社会保险参保信息",
            "provider_id": env["renshe_id"],
            "count": 5,
        },
        {
            "resource_id": env["GY-RS-002"],
            "code": "GY-RS-002",
            "name": "社会保险参保信息",
            "provider_id": env["renshe_id"],
            "count": 1,
        },
    ]
    assert ex["by_month"] == [
        {"month": "2026-09", "count": 1},
        {"month": "2026-10", "count": 1},
        {"month": this_month, "count": 4},
    ]
    cards = {s["party_id"]: s for s in body["scorecards"]}
    assert set(cards) == {env["renshe_id"], env["minzheng_id"], env["zhujian_id"]}  # the departments
    renshe = cards[env["renshe_id"]]
    expected = {
        "party_id": env["renshe_id"],
        "name": "renshe",
        "resources": 3,
        "resources_maintained_within_year": 2,
        "catalog_coverage": 1.0,
        "requests_received": 2,
        "requests_answered": 1,
        "answered_on_time": 1,
        "on_time_rate": 0.5,
        "median_response_working_days": 0.0,
        "overdue_open": 1,
        "disputes": 2,
        "disputes_closed": 1,
        "median_dispute_days": 0.0,
        "exchanges_provided": 6,
        "exchanges_consumed": 0,
        "score": round(
            (WEIGHTS["on_time"] * 0.5 + WEIGHTS["maintained"] * (2 / 3) + WEIGHTS["coverage"] * 1.0)
            + WEIGHTS["disputes"] * 0.5,
            1,
        ),
    }
    assert renshe == expected
    assert list(renshe) == list(expected)  # the documented field order
    minzheng = cards[env["minzheng_id"]]
    assert minzheng["exchanges_consumed"] == 5 and minzheng["resources"] == 0 and minzheng["score"] is None
    assert cards[env["zhujian_id"]]["exchanges_consumed"] == 1
    assert body["scorecards"][0]["party_id"] == env["renshe_id"]  # ranked by score, unscored last

    # a period in Beijing time: September only (the 30 September 20:00 UTC exchange is October's)
    sept = c.get(
        "/v1/audit/statistics",
        params={"since": "2026-09-01T00:00:00+08:00", "until": "2026-10-01T00:00:00+08:00"},
        headers=reg,
    ).json()
    assert sept["period"] == {"since": "2026-08-31T16:00:00Z", "until": "2026-09-30T16:00:00Z"}
    assert sept["exchanges"]["by_month"] == [{"month": "2026-09", "count": 1}]
    assert sept["exchanges"]["by_department"][0]["count"] == 1
    sept_card = {s["party_id"]: s for s in sept["scorecards"]}[env["renshe_id"]]
    assert sept_card["requests_received"] == 0 and sept_card["on_time_rate"] is None
    assert sept_card["disputes"] == 0 and sept_card["exchanges_provided"] == 1

    # one party's view: its exchanges either way, its own scorecard
    mine = c.get("/v1/audit/statistics", params={"party": env["zhujian_id"]}, headers=reg).json()
    assert mine["exchanges"]["by_month"] == [{"month": "2026-10", "count": 1}]
    assert [s["party_id"] for s in mine["scorecards"]] == [env["zhujian_id"]]


def test_statistics_scope_and_rejections(env: dict[str, Any]) -> None:  # noqa: F811
    c = env["client"]
    reg = party(env, "regulator", 672)
    gid = grant(env, fields=["district"])
    assert (
        c.get(f"/v1/data/{env['GY-RS-001']}", params={"grant": gid}, headers=env["minzheng"]).status_code
        == 200
    )

    # a department sees its own scorecard, and only the exchanges it took part in
    own = c.get("/v1/audit/statistics", headers=env["minzheng"])
    assert own.status_code == 200, own.text
    assert [s["party_id"] for s in own.json()["scorecards"]] == [env["minzheng_id"]]
    assert own.json()["exchanges"]["by_department"] == [
        {"party_id": env["renshe_id"], "name": "renshe", "count": 1}
    ]
    same = c.get("/v1/audit/statistics", params={"party": env["minzheng_id"]}, headers=env["minzheng"])
    assert same.status_code == 200 and same.json() == own.json()
    other = c.get("/v1/audit/statistics", params={"party": env["renshe_id"]}, headers=env["minzheng"])
    assert error(other) == (403, "own_scorecard_only")
    assert error(c.get("/v1/audit/statistics", headers=env["qiye"])) == (403, "forbidden_role")
    operator = party(env, "operator", 673)
    assert error(c.get("/v1/audit/statistics", headers=operator)) == (403, "forbidden_role")
    assert c.get("/v1/audit/statistics", headers=BOOT).status_code == 200  # the registrar

    assert error(c.get("/v1/audit/statistics", params={"since": "yesterday"}, headers=reg)) == (
        422,
        "validation_failed",
    )
    backwards = {"since": "2026-10-01T00:00:00Z", "until": "2026-09-01T00:00:00Z"}
    assert error(c.get("/v1/audit/statistics", params=backwards, headers=reg)) == (422, "invalid_time_range")
    equal = {"since": "2026-10-01T00:00:00Z", "until": "2026-10-01T00:00:00Z"}
    assert error(c.get("/v1/audit/statistics", params=equal, headers=reg)) == (422, "invalid_time_range")
    for edge in ("0001-01-01T00:00:00Z", "9999-12-31T23:59:59+14:00", "1969-12-31T23:59:59Z"):
        r = c.get("/v1/audit/statistics", params={"until": edge}, headers=reg)
        assert error(r) == (422, "invalid_time_range"), edge
    assert error(c.get("/v1/audit/statistics", params={"party": "0" * 32}, headers=reg)) == (
        404,
        "party_not_found",
    )


def test_score_formula() -> None:
    assert score({"on_time": None, "maintained": None, "coverage": None, "disputes": None}) is None
    assert score({"on_time": 1.0, "maintained": 1.0, "coverage": 1.0, "disputes": 1.0}) == 100.0
    assert score({"on_time": 0.0, "maintained": 1.0, "coverage": 1.0, "disputes": None}) == round(
        100 * 45 / 85, 1
    )
    assert score({"on_time": 0.5, "maintained": None, "coverage": None, "disputes": None}) == 50.0
    assert sum(WEIGHTS.values()) == 100
