"""A small seeded world for hostile-input tests: one party of every kind, catalog entries with a data
source, a pending and two granted share requests, a dispute, a data subject's token and an anchored
access event about that subject — built through the real API on the real embedded chain, so every
route has a real object to be asked about.

Parties (``World.tokens`` keys): ``registrar`` (bootstrap), ``provider`` (department owning the
resources), ``requester`` (department that requested them and filed the dispute), ``outsider``
(department with no part in any of it), ``operator``, ``enterprise``, ``regulator``, and ``victim``
(a department that exists only to be suspended and reinstated).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from sqlalchemy import select

from ledger.identity.id_number import make_id_number
from ledger.identity.uscc import make_uscc
from ledger.runtime import Ledger
from ledger.store.models import RaisedAlert

BOOTSTRAP_TOKEN = "st_hostile-registrar-token"
PARTY_KINDS = {
    "provider": "department",
    "requester": "department",
    "outsider": "department",
    "operator": "operator",
    "enterprise": "enterprise",
    "regulator": "regulator",
    "victim": "department",
}
NOW = datetime.now(UTC).replace(microsecond=0)


@dataclass
class World:
    tokens: dict[str, str]
    ids: dict[str, str]
    resource: str  # conditional, level 2, by ``provider``
    open_resource: str  # unconditional, level 1, by ``provider``
    request: str  # pending, ``requester`` on ``resource``
    granted_request: str  # granted automatically, ``requester`` on ``open_resource`` (has a data source)
    grant: str  # of ``granted_request``: for reading and for data access
    revocable_grant: str  # another grant of the same kind, for the revocation routes
    dispute: str  # filed by ``requester`` on ``resource``
    subject_token: str  # a data subject's token (issued by the registrar)
    source_location: str  # the CSV file registered as ``open_resource``'s data source
    access_index: int  # anchored event about that subject, by ``requester`` of ``provider``'s data
    contract_resource: str  # open type contract (契约式开放), by ``provider``, with a data source
    contract: str  # effective open contract: ``operator``, ``enterprise``, ``provider``
    contract_access: int  # ``enterprise``'s access of ``contract_resource`` under ``contract``
    application: str  # pending application of ``enterprise`` for ``application_resource``
    application_resource: str  # open type on_application, by ``provider``
    declaration: str  # ``enterprise``'s derived product from ``contract_access``
    alert: int  # an open alert the monitor raised: ``requester``'s off-hours bulk pull (stored, id)

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


def resource_body(
    code: str, share_type: str = "conditional", level: int = 2, open_type: str = "none"
) -> dict[str, Any]:
    return {
        "code": code,
        "name": f"资源 {code}",
        "format": "table",
        "share_type": share_type,
        "open_type": open_type,
        "level": level,
        "update_frequency": "monthly",
        "legal_basis": "《贵州省大数据发展应用促进条例》",
        "fields": [{"name": "name", "sensitive": True, "masking": "name"}, {"name": "district"}],
    }


def request_body(resource_id: str) -> dict[str, Any]:
    return {
        "resource_id": resource_id,
        "purpose": {"code": "employment_service", "text": "就业困难人员认定"},
        "legal_basis": "《就业促进法》第五十二条",
        "scope": {
            "fields": ["district", "name"],
            "valid_from": NOW.isoformat(),
            "valid_until": (NOW + timedelta(days=365)).isoformat(),
            "mode": "masked",
            "max_records": 500,
            "max_accesses": 50,
        },
    }


def access_event(
    event_id: str, accessor: str, provider: str, subjects: list[str] | None = None
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "accessor": accessor,
        "provider": provider,
        "resource": "GY-HOSTILE-001",
        "purpose": "employment_service",
        "fields": ["name"],
        "mode": "masked",
        "record_count": 3,
        "time": (NOW - timedelta(minutes=1)).isoformat(),
        "gateway": "exchange-platform-1",
        "subjects": subjects or [],
    }


def _ok(response: Any, status: int = 201) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def build_world(client: TestClient, ledger: Ledger, *, uscc_base: int = 900) -> World:
    """Seed the world through the API (``client`` must be open on an app whose bootstrap token is
    :data:`BOOTSTRAP_TOKEN`); anchors the log once so proof bundles can be served."""
    sources = ledger.settings.source_root_paths[0]
    sources.mkdir(parents=True, exist_ok=True)
    _write_source(sources / "hostile.csv")
    boot = {"Authorization": f"Bearer {BOOTSTRAP_TOKEN}"}
    tokens = {"registrar": BOOTSTRAP_TOKEN}
    ids = {"registrar": _ok(client.get("/v1/parties/me", headers=boot), 200)["id"]}
    for n, (who, kind) in enumerate(PARTY_KINDS.items()):
        created = _ok(
            client.post(
                "/v1/parties",
                json={"kind": kind, "name": f"{who} 单位", "uscc": make_uscc(uscc_base + n)},
                headers=boot,
            )
        )
        tokens[who], ids[who] = created["token"], created["id"]
    auth = {who: {"Authorization": f"Bearer {token}"} for who, token in tokens.items()}
    resource = _ok(
        client.post("/v1/resources", json=resource_body("GY-HOSTILE-001"), headers=auth["provider"])
    )
    open_resource = _ok(
        client.post(
            "/v1/resources",
            json=resource_body("GY-HOSTILE-002", "unconditional", 1),
            headers=auth["provider"],
        )
    )
    source = client.put(
        f"/v1/resources/{open_resource['id']}/source",
        json={"kind": "csv", "location": str(sources / "hostile.csv")},
        headers=auth["provider"],
    )
    assert source.status_code == 200, source.text
    pending = _ok(
        client.post("/v1/share-requests", json=request_body(resource["id"]), headers=auth["requester"])
    )
    assert pending["status"] == "pending", pending
    granted = _ok(
        client.post("/v1/share-requests", json=request_body(open_resource["id"]), headers=auth["requester"])
    )
    assert granted["status"] == "granted" and granted["grant_id"], granted
    revocable = _ok(
        client.post("/v1/share-requests", json=request_body(open_resource["id"]), headers=auth["requester"])
    )
    assert revocable["status"] == "granted" and revocable["grant_id"], revocable
    dispute = _ok(
        client.post(
            "/v1/disputes",
            json={"resource_id": resource["id"], "reason": "district 字段与民政台账不一致"},
            headers=auth["requester"],
        )
    )
    subject = _ok(
        client.post(
            "/v1/subjects/tokens",
            json={"id_number": make_id_number("520102", date(1980, 5, 17), 21)},
            headers=boot,
        )
    )
    recorded = client.post(
        "/v1/access-events",
        json=[access_event("hostile-access-1", ids["requester"], ids["provider"], [subject["subject"]])],
        headers=auth["operator"],
    )
    assert recorded.status_code == 201, recorded.text
    index = int(recorded.json()[0]["index"])
    opening = _opening(client, auth, ids, str(sources / "hostile.csv"))
    alert = _raised_alert(client, ledger, auth, ids)
    assert ledger.anchorer.anchor_once() is not None
    return World(
        tokens=tokens,
        ids=ids,
        resource=resource["id"],
        open_resource=open_resource["id"],
        request=pending["id"],
        granted_request=granted["id"],
        grant=granted["grant_id"],
        revocable_grant=revocable["grant_id"],
        dispute=dispute["id"],
        subject_token=subject["token"],
        source_location=str(sources / "hostile.csv"),
        access_index=index,
        alert=alert,
        **opening,
    )


def _raised_alert(
    client: TestClient, ledger: Ledger, auth: dict[str, dict[str, str]], ids: dict[str, str]
) -> int:
    """An off-hours bulk pull reported by the platform, and the alert the monitor stores for it."""
    night = datetime.combine(NOW.date() - timedelta(days=1), time(2), ZoneInfo("Asia/Shanghai"))
    event = access_event("hostile-bulk-1", ids["requester"], ids["provider"])
    event.update(record_count=5000, time=night.isoformat())
    recorded = client.post("/v1/access-events", json=[event], headers=auth["operator"])
    assert recorded.status_code == 201, recorded.text
    ledger.alert_monitor.catch_up()  # the app's own monitor thread may have got there first
    with ledger.store.read() as session:
        found = session.scalar(select(RaisedAlert.id).where(RaisedAlert.rule == "off_hours_bulk"))
    assert found is not None
    return int(found)


def contract_body(enterprise_id: str, resource_id: str) -> dict[str, Any]:
    return {
        "enterprise_id": enterprise_id,
        "resources": [resource_id],
        "purposes": ["credit_assessment"],
        "scope": {resource_id: {"fields": ["district"], "mode": "masked", "max_records": 100}},
        "valid_from": (NOW - timedelta(minutes=5)).isoformat(),
        "valid_until": (NOW + timedelta(days=365)).isoformat(),
        "terms_hash": "0x" + "ab" * 32,
    }


def application_body(resource_id: str) -> dict[str, Any]:
    return {
        "resource_id": resource_id,
        "purpose": {"code": "employment_service", "text": "岗位匹配"},
        "scope": {"fields": ["district"], "mode": "aggregate", "max_records": 100},
        "qualifications": [{"name": "营业执照", "sha256": "0x" + "cd" * 32}],
        "valid_from": (NOW - timedelta(minutes=5)).isoformat(),
        "valid_until": (NOW + timedelta(days=90)).isoformat(),
    }


def _opening(
    client: TestClient, auth: dict[str, dict[str, str]], ids: dict[str, str], source: str
) -> dict[str, Any]:
    """An effective open contract with an access and a declaration under it, and a pending application."""
    body = resource_body("GY-HOSTILE-003", open_type="contract")
    contract_resource = _ok(client.post("/v1/resources", json=body, headers=auth["provider"]))["id"]
    body = resource_body("GY-HOSTILE-004", open_type="on_application")
    application_resource = _ok(client.post("/v1/resources", json=body, headers=auth["provider"]))["id"]
    put = client.put(
        f"/v1/resources/{contract_resource}/source",
        json={"kind": "csv", "location": source},
        headers=auth["provider"],
    )
    assert put.status_code == 200, put.text
    contract = _ok(
        client.post(
            "/v1/open-contracts",
            json=contract_body(ids["enterprise"], contract_resource),
            headers=auth["operator"],
        )
    )["id"]
    for who in ("enterprise", "provider"):
        signed = _ok(client.post(f"/v1/open-contracts/{contract}/sign", json={}, headers=auth[who]), 200)
    assert signed["status"] == "effective", signed
    got = client.get(
        f"/v1/data/{contract_resource}",
        params={"contract": contract, "purpose": "credit_assessment"},
        headers=auth["enterprise"],
    )
    assert got.status_code == 200, got.text
    contract_access = int(got.headers["X-Access-Event"])
    declaration = _ok(
        client.post(
            "/v1/declarations",
            json={
                "contract_id": contract,
                "name": "区域分布报告",
                "inputs": [contract_access],
                "purpose": "credit_assessment",
                "release_mode": "customers",
            },
            headers=auth["enterprise"],
        )
    )["id"]
    application = _ok(
        client.post(
            "/v1/open-applications", json=application_body(application_resource), headers=auth["enterprise"]
        )
    )["id"]
    return {
        "contract_resource": contract_resource,
        "contract": contract,
        "contract_access": contract_access,
        "application": application,
        "application_resource": application_resource,
        "declaration": declaration,
    }


def _write_source(path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["name", "district"])
        writer.writeheader()
        for n, district in enumerate(("云岩区", "南明区", "观山湖区", "花溪区", "乌当区", "白云区")):
            writer.writerow({"name": f"居民{n}", "district": district})
