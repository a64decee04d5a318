"""The regulator's trail and integrity audit through the API, on the gateway's real events."""

from __future__ import annotations

import csv
import io
from typing import Any

from sqlalchemy import text

from tests.integration.test_gateway import BOOT, denied, env, grant  # noqa: F401 - the fixture


def regulator(e: dict[str, Any]) -> dict[str, str]:
    from ledger.identity.uscc import make_uscc

    r = e["client"].post(
        "/v1/parties", json={"kind": "regulator", "name": "网安支队", "uscc": make_uscc(650)}, headers=BOOT
    )
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def test_trail_filters_pages_and_exports(env: dict[str, Any]) -> None:  # noqa: F811
    c = env["client"]
    rid = env["GY-RS-001"]
    reg = regulator(env)
    gid = grant(env, fields=["id_number", "district"])
    for _ in range(3):
        assert (
            c.get(f"/v1/data/{rid}", params={"grant": gid, "limit": 2}, headers=env["minzheng"]).status_code
            == 200
        )
    denied(env, c.get(f"/v1/data/{rid}", headers=env["zhujian"]), "no_grant")

    r = c.get("/v1/audit/trail", headers=env["minzheng"])
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden_role"

    mine = c.get(
        "/v1/audit/trail", params={"accessor": env["minzheng_id"], "kind": "access"}, headers=reg
    ).json()
    assert len(mine["items"]) == 3 and mine["next_before"] is None
    first = mine["items"][0]
    assert first["accessor"]["name"] == "minzheng" and first["resource"]["name"] == "社会保险参保信息"
    assert first["purpose"] == "social_assistance" and first["grant"] == gid and first["mode"] == "raw"
    assert first["bundle"] == f"/v1/proofs/access/{first['index']}"
    assert [i["index"] for i in mine["items"]] == sorted((i["index"] for i in mine["items"]), reverse=True)

    page1 = c.get("/v1/audit/trail", params={"grant": gid, "limit": 2}, headers=reg).json()
    assert len(page1["items"]) == 2 and page1["next_before"] == page1["items"][-1]["index"]
    page2 = c.get(
        "/v1/audit/trail", params={"grant": gid, "limit": 2, "before": page1["next_before"]}, headers=reg
    )
    rest = page2.json()["items"]
    assert all(i["index"] < page1["next_before"] for i in rest) and {i["grant"] for i in rest} == {gid}

    refused = c.get("/v1/audit/trail", params={"kind": "denied"}, headers=reg).json()["items"]
    assert [i["reason"] for i in refused] == ["no_grant"] and refused[0]["accessor"]["id"] == env[
        "zhujian_id"
    ]

    who = env["rows"][0]["id_number"]
    about = c.get("/v1/audit/trail", params={"subject": who}, headers=reg).json()["items"]
    assert len(about) == 3 and all(i["kind"] == "access" for i in about)
    r = c.get("/v1/audit/trail", params={"subject": "123"}, headers=reg)
    assert r.status_code == 422

    provided = c.get(
        "/v1/audit/trail", params={"party": env["renshe_id"], "mode": "raw", "kind": "access"}, headers=reg
    ).json()
    assert len(provided["items"]) == 3

    r = c.get(
        "/v1/audit/trail",
        params={"since": "2030-01-01T00:00:00Z", "until": "2029-01-01T00:00:00Z"},
        headers=reg,
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_time_range"

    r = c.get("/v1/audit/trail", params={"accessor": env["minzheng_id"], "format": "csv"}, headers=reg)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert (
        len(rows) >= 3
        and rows[0]["accessor_name"] == "minzheng"
        and rows[0]["bundle"].startswith("/v1/proofs/")
    )


def test_integrity_audit_report(env: dict[str, Any]) -> None:  # noqa: F811
    c, ledger = env["client"], env["ledger"]
    reg = regulator(env)
    gid = grant(env, fields=["district"])
    c.get(f"/v1/data/{env['GY-RS-001']}", params={"grant": gid}, headers=env["minzheng"])
    ledger.anchorer.anchor_once()
    r = c.post("/v1/audit/verify", headers=env["minzheng"])
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden_role"
    report = c.post("/v1/audit/verify", headers=reg).json()
    assert report["intact"] is True and report["problems"] == [] and report["entries"] > 0
    assert report["latest_anchored"]["tree_size"] == report["entries"] and report["chain_id"] > 0
    # A privileged user edits an entry behind the triggers' back: the audit names the index.
    victim = report["entries"] - 1
    with ledger.store.session() as session:
        if session.bind.dialect.name == "sqlite":
            session.execute(text("DROP TRIGGER log_entries_no_update"))
        else:
            session.execute(text("ALTER TABLE log_entries DISABLE TRIGGER log_entries_append_only"))
        stored = session.execute(
            text("SELECT entry FROM log_entries WHERE idx = :i"), {"i": victim}
        ).scalar_one()
        edited = bytes(stored).replace(b"social_assistance", b"law_enforcement")
        session.execute(text("UPDATE log_entries SET entry = :e WHERE idx = :i"), {"e": edited, "i": victim})
    report = c.post("/v1/audit/verify", headers=reg).json()
    assert report["intact"] is False and victim in [p["index"] for p in report["problems"]]
