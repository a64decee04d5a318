"""Lineage (流通路径) of a resource through the API, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.integration.test_audit_stats import error, party, reported
from tests.integration.test_gateway import BOOT, env, grant  # noqa: F401 - the fixture


def by_id(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["id"]: item for item in items}


def edges(body: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(e["source"], e["target"]): e for e in body["edges"]}


def test_lineage_graph(env: dict[str, Any]) -> None:  # noqa: F811
    c = env["client"]
    rid, renshe, minzheng = env["GY-RS-001"], env["renshe_id"], env["minzheng_id"]
    op, reg = party(env, "operator", 680), party(env, "regulator", 681)
    # minzheng provides a resource of its own: where data it received may flow on
    r = c.post(
        "/v1/resources",
        json={
            "code": "GY-MZ-001",
            "name": "低保对象信息",
            "format": "table",
            "share_type": "conditional",
            "open_type": "none",
            "level": 2,
            "update_frequency": "monthly",
            "legal_basis": "《社会救助暂行办法》",
            "fields": [{"name": "district"}],
        },
        headers=env["minzheng"],
    )
    assert r.status_code == 201, r.text
    onward_rid = r.json()["id"]
    # before minzheng first took renshe's data: not an onward share
    reported(
        env,
        op,
        "before",
        datetime.now(UTC) - timedelta(days=2),
        accessor=env["zhujian_id"],
        provider=minzheng,
        resource=onward_rid,
        purpose="statistics",
    )
    gid = grant(env, fields=["district"])
    revoked = grant(env, fields=["district"])
    assert (
        c.post(f"/v1/grants/{revoked}/revoke", json={"reason": "停止"}, headers=env["renshe"]).status_code
        == 200
    )
    for _ in range(2):
        assert c.get(f"/v1/data/{rid}", params={"grant": gid}, headers=env["minzheng"]).status_code == 200
    assert c.get(f"/v1/data/{rid}", headers=env["zhujian"]).status_code == 403  # refused, logged
    # an enterprise's access reported without a grant, under the catalog code
    reported(env, op, "direct", datetime.now(UTC), accessor=env["qiye_id"], resource="GY-RS-001")
    # after it: zhujian takes minzheng's own resource twice (by code and by id)
    for n, ref in enumerate(("GY-MZ-001", onward_rid)):
        reported(
            env,
            op,
            f"onward-{n}",
            datetime.now(UTC),
            accessor=env["zhujian_id"],
            provider=minzheng,
            resource=ref,
            purpose="statistics",
        )

    r = c.get(f"/v1/audit/lineage/{rid}", headers=reg)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["resource"] == {
        "id": rid,
        "code": "GY-RS-001",
        "name": "社会保险参保信息",
        "provider_id": renshe,
    }
    nodes = by_id(body["nodes"])
    assert {n["kind"] for n in body["nodes"]} == {"provider", "grant", "accessor", "onward_resource"}
    assert nodes[f"provider:{renshe}"] == {
        "id": f"provider:{renshe}",
        "kind": "provider",
        "label": "renshe",
        "party_id": renshe,
    }
    g = nodes[f"grant:{gid}"]
    assert g["status"] == "active" and g["grantee"] == minzheng and g["purpose"] == "social_assistance"
    assert nodes[f"grant:{revoked}"]["status"] == "revoked"
    assert nodes[f"accessor:{minzheng}"]["access_count"] == 2
    assert nodes[f"accessor:{env['qiye_id']}"]["access_count"] == 1
    assert nodes[f"accessor:{env['qiye_id']}"]["party_kind"] == "enterprise"
    zhujian = nodes[f"accessor:{env['zhujian_id']}"]
    assert zhujian["access_count"] == 0 and zhujian["denied_count"] == 1
    onward = nodes[f"onward_resource:{onward_rid}"]
    assert onward["code"] == "GY-MZ-001" and onward["provider_id"] == minzheng and onward["access_count"] == 2

    e = edges(body)
    assert e[(f"provider:{renshe}", f"grant:{gid}")] == {
        "source": f"provider:{renshe}",
        "target": f"grant:{gid}",
        "kind": "grant",
        "count": 2,
        "purposes": ["social_assistance"],
    }
    assert e[(f"grant:{gid}", f"accessor:{minzheng}")]["count"] == 2
    assert e[(f"provider:{renshe}", f"grant:{revoked}")]["count"] == 0
    assert e[(f"grant:{revoked}", f"accessor:{minzheng}")]["count"] == 0  # held, never used
    direct = e[(f"provider:{renshe}", f"accessor:{env['qiye_id']}")]
    assert direct["kind"] == "access" and direct["count"] == 1 and direct["purposes"] == ["social_assistance"]
    flow = e[(f"accessor:{minzheng}", f"onward_resource:{onward_rid}")]
    assert flow == {
        "source": f"accessor:{minzheng}",
        "target": f"onward_resource:{onward_rid}",
        "kind": "onward",
        "count": 2,
        "purposes": ["statistics"],
    }
    assert all(edge["source"] in nodes and edge["target"] in nodes for edge in body["edges"])

    assert c.get("/v1/audit/lineage/GY-RS-001", headers=reg).json() == body  # by catalog code too
    # the provider and the registrar see it too; nobody else
    provider_view = c.get(f"/v1/audit/lineage/{rid}", headers=env["renshe"])
    assert provider_view.status_code == 200 and provider_view.json() == body
    assert c.get(f"/v1/audit/lineage/{rid}", headers=BOOT).status_code == 200
    for who in ("minzheng", "zhujian", "qiye"):
        assert error(c.get(f"/v1/audit/lineage/{rid}", headers=env[who])) == (403, "not_provider"), who
    assert error(c.get(f"/v1/audit/lineage/{'0' * 32}", headers=reg)) == (404, "resource_not_found")


def test_lineage_of_an_unused_resource(env: dict[str, Any]) -> None:  # noqa: F811
    c = env["client"]
    body = c.get(f"/v1/audit/lineage/{env['GY-RS-002']}", headers=env["renshe"]).json()
    assert [n["kind"] for n in body["nodes"]] == ["provider"] and body["edges"] == []
