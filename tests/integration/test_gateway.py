"""The data gateway end to end through the real app, the real embedded chain, SQLite and PostgreSQL:
sources, each mode, streaming, every denial reason (each logged as ``denied``), the subject tracker."""

from __future__ import annotations

import csv
import hashlib
import json
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from api.app import create_app
from ledger.gateway.masking import subject_hash
from ledger.identity.id_number import id_check_char, make_id_number
from ledger.identity.uscc import make_uscc
from ledger.runtime import Ledger
from ledger.settings import Settings
from ledger.store.models import ShareRequest

BOOT = {"Authorization": "Bearer st_boot-gateway"}
NOW = datetime.now(UTC).replace(microsecond=0)
FIELDS: list[dict[str, Any]] = [
    {"name": "id_number", "sensitive": True, "masking": "id_number"},
    {"name": "name", "sensitive": True, "masking": "name"},
    {"name": "phone", "sensitive": True, "masking": "phone"},
    {"name": "district"},
    {"name": "insured", "type": "boolean"},
    {"name": "monthly_base", "type": "integer"},
]
DISTRICTS = ["云岩区"] * 6 + ["南明区"] * 5 + ["花溪区"] * 3
NAMES = [
    "张伟",
    "王芳",
    "欧阳娜娜",
    "李强",
    "刘洋",
    "陈静",
    "杨磊",
    "赵敏",
    "黄丽",
    "周杰",
    "吴霞",
    "徐明",
    "孙悦",
    "马超",
]


def _x_id(division: str, birth: date) -> str:
    """An ID number whose GB 11643 check character is X."""
    for seq in range(1000):
        first17 = f"{division}{birth:%Y%m%d}{seq:03d}"
        if id_check_char(first17) == "X":
            return first17 + "X"
    raise AssertionError("no X check character found")


def people() -> list[dict[str, Any]]:
    rows = []
    for n, district in enumerate(DISTRICTS):
        birth = date(1960 + n, 1 + n % 12, 1 + n)
        number = _x_id("520103", birth) if n == 0 else make_id_number("520102", birth, n)
        rows.append(
            {
                "id_number": number,
                "name": NAMES[n],
                "phone": f"138{n:04d}5678",
                "district": district,
                "insured": n % 3 != 0,
                "monthly_base": 3000 + 100 * n,
            }
        )
    return rows


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=[f["name"] for f in FIELDS])
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "insured": "true" if row["insured"] else "false"})


def write_sqlite(path: Path, rows: list[dict[str, Any]], *, secret: bool = False) -> None:
    """A SQLite source: table ``insured`` holding ``rows`` (the CSV's columns), and with ``secret``
    one more column that no catalog field names."""
    import sqlalchemy as sa

    extra = (", secret TEXT", ", 'x'") if secret else ("", "")
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE insured (id_number TEXT, name TEXT, phone TEXT, district TEXT, insured BOOLEAN, "
            f"monthly_base INTEGER{extra[0]})"
        )
        conn.execute(
            sa.text(
                "INSERT INTO insured VALUES "
                f"(:id_number, :name, :phone, :district, :insured, :monthly_base{extra[1]})"
            ),
            rows,
        )
    engine.dispose()


@pytest.fixture
def env(tmp_path: Path, db_url: str) -> Iterator[dict[str, Any]]:
    settings = Settings(
        data_dir=tmp_path / "d", db_url=db_url, bootstrap_token="st_boot-gateway", anchor_loop=False
    )
    app = create_app(settings)
    rows = people()
    source = settings.data_dir / "sources" / "social_security.csv"
    write_csv(source, rows)
    with TestClient(app) as client:
        out: dict[str, Any] = {
            "client": client,
            "ledger": app.state.ledger,
            "rows": rows,
            "settings": settings,
        }
        for n, (name, kind) in enumerate(
            [
                ("renshe", "department"),
                ("minzheng", "department"),
                ("zhujian", "department"),
                ("qiye", "enterprise"),
            ]
        ):
            r = client.post(
                "/v1/parties", json={"kind": kind, "name": name, "uscc": make_uscc(600 + n)}, headers=BOOT
            )
            assert r.status_code == 201, r.text
            out[name] = {"Authorization": f"Bearer {r.json()['token']}"}
            out[name + "_id"] = r.json()["id"]
        for code, open_type in (("GY-RS-001", "none"), ("GY-RS-002", "none"), ("GY-RS-OPEN", "open")):
            body = {
                "code": code,
                "name": "社会保险参保信息",
                "format": "table",
                "share_type": "conditional",
                "open_type": open_type,
                "level": 2,
                "update_frequency": "monthly",
                "legal_basis": "《社会保险法》",
                "fields": FIELDS,
            }
            r = client.post("/v1/resources", json=body, headers=out["renshe"])
            assert r.status_code == 201, r.text
            out[code] = r.json()["id"]
            r = client.put(
                f"/v1/resources/{out[code]}/source",
                json={"kind": "csv", "location": str(source)},
                headers=out["renshe"],
            )
            assert r.status_code == 200, r.text
        yield out


def grant(env: dict[str, Any], *, who: str = "minzheng", code: str = "GY-RS-001", **scope: Any) -> str:
    c: TestClient = env["client"]
    body = {
        "resource_id": env[code],
        "purpose": {"code": "social_assistance", "text": "低保资格复核"},
        "legal_basis": "《社会救助暂行办法》第十一条",
        "scope": {
            "fields": ["id_number", "name", "district", "insured", "monthly_base"],
            "valid_from": (NOW - timedelta(minutes=1)).isoformat(),
            "valid_until": (NOW + timedelta(days=30)).isoformat(),
            "mode": "raw",
            "max_records": 100,
            "max_accesses": 10,
            **scope,
        },
    }
    r = c.post("/v1/share-requests", json=body, headers=env[who])
    assert r.status_code == 201, r.text
    r = c.post(f"/v1/share-requests/{r.json()['id']}/decision", json={"approve": True}, headers=env["renshe"])
    assert r.status_code == 200 and r.json()["status"] == "granted", r.text
    grant_id: str = r.json()["grant_id"]
    return grant_id


def entry(env: dict[str, Any], index: int) -> dict[str, Any]:
    """The logged event at ``index``, whose stored bytes are checked to be RFC 8785 (the ``rfc8785``
    package, not our encoder): the gateway splices its subject hashes into the encoded leaf."""
    import rfc8785

    ledger: Ledger = env["ledger"]
    stored = ledger.log.log.entry(index).entry
    result: dict[str, Any] = json.loads(stored)
    assert rfc8785.dumps(result) == stored
    return result


def denied(env: dict[str, Any], r: Any, reason: str) -> dict[str, Any]:
    """A refused access: 403 with the exact reason, and a ``denied`` event in the log saying so."""
    assert r.status_code == 403, r.text
    error = r.json()["error"]
    assert error["code"] == reason, error
    assert r.headers["X-Access-Event"] == str(error["access_event"])
    logged = entry(env, error["access_event"])
    assert logged["kind"] == "denied" and logged["reason"] == reason, logged
    return logged


def test_raw_access_logged_with_hashes(env: dict[str, Any]) -> None:
    c, ledger = env["client"], env["ledger"]
    gid = grant(env)
    r = c.get(f"/v1/data/{env['GY-RS-001']}", params={"grant": gid, "limit": 5}, headers=env["minzheng"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["mode"] == "raw" and body["grant"] == gid and body["truncated"] is True
    assert body["fields"] == ["id_number", "name", "district", "insured", "monthly_base"]
    assert body["rows"][0] == {k: env["rows"][0][k] for k in body["fields"]}
    assert body["rows"][0]["id_number"].endswith("X") and body["rows"][0]["insured"] is False
    index = int(r.headers["X-Access-Event"])
    logged = entry(env, index)
    digest = "0x" + hashlib.sha256(r.content).hexdigest()
    assert logged["result_hash"] == digest == r.headers["X-Result-Hash"]
    assert logged["kind"] == "access" and logged["record_count"] == 5 and logged["grant"] == gid
    assert logged["purpose"] == "social_assistance" and logged["mode"] == "raw"
    assert logged["accessor"] == env["minzheng_id"] and logged["provider"] == env["renshe_id"]
    key = ledger.gateway.subject_key
    assert logged["subjects"] == sorted(subject_hash(key, p["id_number"]) for p in env["rows"][:5])
    assert logged["query_hash"].startswith("0x") and logged["level"] == 2
    # judged on the chain's clock too: no earlier than the block the grant was read at, nor than
    # the access's own time (a verifier checks the window and any revocation at it)
    when = datetime.fromisoformat(logged["time"].replace("Z", "+00:00")).timestamp()
    assert isinstance(logged["chain_time"], int) and logged["chain_time"] >= int(when)
    assert logged["chain_time"] >= ledger.chain.latest_block()["timestamp"] - 60


def test_fields_and_filter_narrow_the_grant(env: dict[str, Any]) -> None:
    c = env["client"]
    gid = grant(env, row_filter={"district": {"in": ["云岩区", "南明区"]}})
    r = c.post(
        f"/v1/data/{env['GY-RS-001']}",
        json={"grant": gid, "fields": ["name", "district"], "filter": {"district": "南明区"}},
        headers=env["minzheng"],
    )
    assert r.status_code == 200, r.text
    rows = r.json()["rows"]
    assert len(rows) == 5 and {row["district"] for row in rows} == {"南明区"}
    assert set(rows[0]) == {"name", "district"}
    # The grant's filter still holds when the caller asks for more.
    r = c.post(
        f"/v1/data/{env['GY-RS-001']}",
        json={"grant": gid, "filter": {"district": "花溪区"}},
        headers=env["minzheng"],
    )
    assert r.status_code == 200 and r.json()["rows"] == []


def test_masked_mode(env: dict[str, Any]) -> None:
    c = env["client"]
    gid = grant(env, mode="masked", fields=["id_number", "name", "phone", "district"])
    r = c.get(f"/v1/data/{env['GY-RS-001']}", params={"grant": gid}, headers=env["minzheng"])
    assert r.status_code == 200, r.text
    rows = r.json()["rows"]
    first = env["rows"][0]["id_number"]
    assert rows[0]["id_number"] == first[:6] + "*" * 8 + first[-4:] and rows[0]["id_number"].endswith("X")
    assert rows[0]["name"] == "张*" and rows[2]["name"] == "欧阳**"
    assert rows[1]["phone"] == "138****5678" and rows[0]["district"] == "云岩区"
    assert all(env["rows"][n]["id_number"] not in r.text for n in range(len(rows)))


def test_ndjson_stream_hash_and_event(env: dict[str, Any]) -> None:
    c = env["client"]
    gid = grant(env, fields=["id_number", "district"])
    with c.stream(
        "GET",
        f"/v1/data/{env['GY-RS-001']}",
        params={"grant": gid},
        headers={**env["minzheng"], "Accept": "application/x-ndjson"},
    ) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
        index = int(r.headers["X-Access-Event"])
        data = b"".join(r.iter_bytes())
    lines = [json.loads(line) for line in data.splitlines()]
    assert len(lines) == len(env["rows"]) and lines[0] == {
        "id_number": env["rows"][0]["id_number"],
        "district": "云岩区",
    }
    logged = entry(env, index)
    assert logged["result_hash"] == "0x" + hashlib.sha256(data).hexdigest() == r.headers["X-Result-Hash"]
    assert logged["record_count"] == len(env["rows"])


def test_aggregate_k_threshold(env: dict[str, Any]) -> None:
    c = env["client"]
    gid = grant(env, mode="aggregate", fields=["district", "monthly_base", "insured"])
    r = c.get(
        f"/v1/data/{env['GY-RS-001']}",
        params={"grant": gid, "group_by": "district", "metrics": "count,avg:monthly_base"},
        headers=env["minzheng"],
    )
    assert r.status_code == 200, r.text
    body = r.json()
    # 云岩区 6 and 南明区 5 reach k = 5; 花溪区 (3) is withheld.
    assert sorted((g["district"], g["count"]) for g in body["groups"]) == [("云岩区", 6), ("南明区", 5)]
    assert {g["district"]: g["avg:monthly_base"] for g in body["groups"]}["云岩区"] == 3250
    assert body["suppressed_groups"] == 1 and body["k"] == 5 and "rows" not in body
    assert entry(env, int(r.headers["X-Access-Event"]))["subjects"] == []
    r = c.get(
        f"/v1/data/{env['GY-RS-001']}",
        params={"grant": gid, "group_by": "district,insured"},
        headers=env["minzheng"],
    )
    denied(env, r, "k_threshold")  # every (district, insured) group has fewer than 5 people
    r = c.get(
        f"/v1/data/{env['GY-RS-001']}",
        params={"grant": gid, "group_by": "monthly_base"},
        headers=env["minzheng"],
    )
    denied(env, r, "k_threshold")
    r = c.get(
        f"/v1/data/{env['GY-RS-001']}", params={"grant": gid, "group_by": "name"}, headers=env["minzheng"]
    )
    denied(env, r, "out_of_scope")


def test_verify_mode_answers_yes_no_only(env: dict[str, Any]) -> None:
    c, ledger = env["client"], env["ledger"]
    gid = grant(env, mode="verify", fields=["id_number"], row_filter={"insured": True})
    insured = env["rows"][1]["id_number"]
    not_insured = env["rows"][0]["id_number"].lower()  # the X check character written as x
    stranger = make_id_number("520111", date(1990, 5, 5), 7)
    r = c.post(
        f"/v1/data/{env['GY-RS-001']}",
        json={"grant": gid, "subjects": [insured, not_insured, stranger]},
        headers=env["minzheng"],
    )
    assert r.status_code == 200, r.text
    assert [a["match"] for a in r.json()["answers"]] == [True, False, False]
    assert "name" not in r.text and env["rows"][1]["name"] not in r.text
    logged = entry(env, int(r.headers["X-Access-Event"]))
    key = ledger.gateway.subject_key
    assert insured not in json.dumps(logged) and subject_hash(key, insured) in logged["subjects"]


def test_delivered_bytes_are_rfc8785(env: dict[str, Any]) -> None:
    """What each mode delivers is exactly the RFC 8785 form of itself (checked with the ``rfc8785``
    package, not the gateway's own encoder), and ``X-Result-Hash`` is SHA-256 of those bytes."""
    import rfc8785

    c = env["client"]
    cases: list[tuple[str, list[str], dict[str, Any]]] = [
        ("raw", ["id_number", "name", "district", "insured", "monthly_base"], {}),
        ("masked", ["id_number", "name", "phone", "district"], {}),
        (
            "aggregate",
            ["district", "monthly_base"],
            {"group_by": ["district"], "metrics": ["avg:monthly_base"]},
        ),
        ("verify", ["id_number"], {"subjects": [env["rows"][0]["id_number"], "x"], "key": "id_number"}),
    ]
    for mode, fields, extra in cases:
        gid = grant(env, mode=mode, fields=fields)
        r = c.post(f"/v1/data/{env['GY-RS-001']}", json={"grant": gid, **extra}, headers=env["minzheng"])
        assert r.status_code == 200, (mode, r.text)
        assert r.content == rfc8785.dumps(json.loads(r.content)), mode
        assert r.headers["X-Result-Hash"] == "0x" + hashlib.sha256(r.content).hexdigest()
        assert entry(env, int(r.headers["X-Access-Event"]))["result_hash"] == r.headers["X-Result-Hash"]
    gid = grant(env, mode="masked", fields=["name", "phone", "district"])
    r = c.post(
        f"/v1/data/{env['GY-RS-001']}", json={"grant": gid, "format": "ndjson"}, headers=env["minzheng"]
    )
    assert r.status_code == 200, r.text
    assert all(line == rfc8785.dumps(json.loads(line)) for line in r.content.splitlines())


def test_aggregate_reads_only_what_it_needs_but_filters_on_the_grant(env: dict[str, Any]) -> None:
    """An aggregate reads only its group-by and metric columns, yet the grant's row filter on
    another column still applies — for a file source and a database source."""

    c, settings = env["client"], env["settings"]
    rid = env["GY-RS-001"]
    gid = grant(
        env, mode="aggregate", fields=["district", "monthly_base"], row_filter={"monthly_base": {"gte": 3100}}
    )

    def groups() -> list[tuple[str, int]]:
        r = c.get(f"/v1/data/{rid}", params={"grant": gid, "group_by": "district"}, headers=env["minzheng"])
        assert r.status_code == 200, r.text
        assert r.json()["suppressed_groups"] == 1  # 花溪区: 3 people
        return sorted((g["district"], g["count"]) for g in r.json()["groups"])

    # Without the filter 云岩区 has 6 people; row 0 (3000) is filtered out.
    assert groups() == [("云岩区", 5), ("南明区", 5)]
    path = settings.data_dir / "sources" / "agg.sqlite"
    write_sqlite(path, env["rows"])
    for source in ({"table": "insured"}, {"query": "SELECT * FROM insured"}):
        r = c.put(
            f"/v1/resources/{rid}/source",
            json={"kind": "sql", "location": f"sqlite:///{path}", **source},
            headers=env["renshe"],
        )
        assert r.status_code == 200, r.text
        assert groups() == [("云岩区", 5), ("南明区", 5)]


def test_large_access_spans_source_batches(env: dict[str, Any]) -> None:
    """More rows than one source batch (2,000): the limit, the truncation flag, the subjects (of
    the delivered rows only, even when the ID column is not delivered) and the hashes hold across
    batch boundaries, in the JSON body and in the NDJSON stream."""

    c, ledger, settings = env["client"], env["ledger"], env["settings"]
    rid = env["GY-RS-001"]
    many: list[dict[str, Any]] = [
        {
            "id_number": make_id_number("520102", date(1950, 1, 1) + timedelta(days=n // 900), n % 900 + 1),
            "name": "张伟",
            "phone": "13800005678",
            "district": DISTRICTS[n % len(DISTRICTS)],
            "insured": n % 2 == 0,
            "monthly_base": 3000 + n,
        }
        for n in range(4500)
    ]
    path = settings.data_dir / "sources" / "many.sqlite"
    write_sqlite(path, many)
    r = c.put(
        f"/v1/resources/{rid}/source",
        json={"kind": "sql", "location": f"sqlite:///{path}", "table": "insured"},
        headers=env["renshe"],
    )
    assert r.status_code == 200, r.text
    key = ledger.gateway.subject_key
    gid = grant(env, fields=["id_number", "district", "monthly_base"], max_records=5000)
    r = c.get(f"/v1/data/{rid}", params={"grant": gid, "limit": 4100}, headers=env["minzheng"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["rows"]) == 4100 and body["truncated"] is True and r.headers["X-Truncated"] == "true"
    assert [row["monthly_base"] for row in body["rows"]] == [3000 + n for n in range(4100)]
    logged = entry(env, int(r.headers["X-Access-Event"]))
    assert logged["record_count"] == 4100
    assert logged["subjects"] == sorted(subject_hash(key, p["id_number"]) for p in many[:4100])
    assert logged["result_hash"] == "0x" + hashlib.sha256(r.content).hexdigest()
    r = c.get(f"/v1/data/{rid}", params={"grant": gid}, headers=env["minzheng"])
    assert len(r.json()["rows"]) == 4500 and r.json()["truncated"] is False
    masked = grant(env, mode="masked", fields=["district", "monthly_base"], max_records=5000)
    r = c.get(
        f"/v1/data/{rid}",
        params={"grant": masked, "limit": 2001, "format": "ndjson"},
        headers=env["minzheng"],
    )
    assert r.status_code == 200 and r.headers["X-Truncated"] == "true", r.text
    lines = r.content.splitlines()
    assert len(lines) == 2001 and json.loads(lines[-1]) == {
        "district": many[2000]["district"],
        "monthly_base": 5000,
    }
    logged = entry(env, int(r.headers["X-Access-Event"]))
    assert logged["record_count"] == 2001 and logged["result_hash"] == r.headers["X-Result-Hash"]
    assert logged["subjects"] == sorted(subject_hash(key, p["id_number"]) for p in many[:2001])


def test_every_denial_reason_is_logged(env: dict[str, Any]) -> None:
    c, ledger = env["client"], env["ledger"]
    rid = env["GY-RS-001"]
    gid = grant(env, fields=["district", "name"], max_accesses=2)
    denied(env, c.get(f"/v1/data/{rid}", headers=env["minzheng"]), "no_grant")
    denied(
        env,
        c.get(f"/v1/data/{rid}", params={"grant": "0x" + "ab" * 32}, headers=env["minzheng"]),
        "unknown_grant",
    )
    denied(
        env, c.get(f"/v1/data/{rid}", params={"grant": "nonsense"}, headers=env["minzheng"]), "unknown_grant"
    )
    denied(env, c.get(f"/v1/data/{rid}", params={"grant": gid}, headers=env["zhujian"]), "not_grantee")
    other = env["GY-RS-002"]
    denied(env, c.get(f"/v1/data/{other}", params={"grant": gid}, headers=env["minzheng"]), "wrong_resource")
    r = c.get(f"/v1/data/{rid}", params={"grant": gid, "fields": "name,id_number"}, headers=env["minzheng"])
    logged = denied(env, r, "out_of_scope")
    assert logged["grant"] == gid and logged["purpose"] == "social_assistance"
    r = c.get(
        f"/v1/data/{rid}", params={"grant": gid, "filter": '{"insured": true}'}, headers=env["minzheng"]
    )
    denied(env, r, "out_of_scope")
    for _ in range(2):
        assert c.get(f"/v1/data/{rid}", params={"grant": gid}, headers=env["minzheng"]).status_code == 200
    denied(env, c.get(f"/v1/data/{rid}", params={"grant": gid}, headers=env["minzheng"]), "over_cap")
    # Revoked: seen at once, although the chain read is cached.
    gid2 = grant(env, fields=["district"])
    assert c.get(f"/v1/data/{rid}", params={"grant": gid2}, headers=env["minzheng"]).status_code == 200
    r = c.post(f"/v1/grants/{gid2}/revoke", json={"reason": "履职需要已结束"}, headers=env["renshe"])
    assert r.status_code == 200, r.text
    denied(env, c.get(f"/v1/data/{rid}", params={"grant": gid2}, headers=env["minzheng"]), "revoked")
    # Not yet valid, and a scope edited in the database behind the chain's back.
    later = grant(
        env,
        fields=["district"],
        valid_from=(NOW + timedelta(days=2)).isoformat(),
        valid_until=(NOW + timedelta(days=9)).isoformat(),
    )
    denied(env, c.get(f"/v1/data/{rid}", params={"grant": later}, headers=env["minzheng"]), "not_yet_valid")
    gid3 = grant(env, fields=["district"])
    with ledger.store.session() as session:
        row = session.query(ShareRequest).filter_by(grant_id=gid3).one()
        scope = json.loads(row.scope_json)
        session.execute(
            update(ShareRequest)
            .where(ShareRequest.id == row.id)
            .values(scope_json=json.dumps({**scope, "fields": ["district", "id_number"]}))
        )
    denied(env, c.get(f"/v1/data/{rid}", params={"grant": gid3}, headers=env["minzheng"]), "scope_mismatch")


def test_expired_grant(env: dict[str, Any]) -> None:
    c = env["client"]
    start = datetime.now(UTC)
    gid = grant(
        env,
        fields=["district"],
        valid_from=(start - timedelta(minutes=1)).isoformat(),
        valid_until=(start + timedelta(seconds=4)).replace(microsecond=0).isoformat(),
    )
    time.sleep(max(0.0, (start + timedelta(seconds=5) - datetime.now(UTC)).total_seconds()))
    env["ledger"].gateway.grants._cache.clear()  # past the cache window, as after 5 s in production
    denied(
        env, c.get(f"/v1/data/{env['GY-RS-001']}", params={"grant": gid}, headers=env["minzheng"]), "expired"
    )


def test_open_resource_needs_no_grant_but_is_logged(env: dict[str, Any]) -> None:
    c = env["client"]
    r = c.get(f"/v1/data/{env['GY-RS-OPEN']}", params={"purpose": "academic_research"}, headers=env["qiye"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["mode"] == "masked" and body["grant"] is None and "*" in body["rows"][0]["id_number"]
    logged = entry(env, int(r.headers["X-Access-Event"]))
    assert logged["accessor"] == env["qiye_id"] and logged["purpose"] == "academic_research"


def test_source_registration_rules(env: dict[str, Any], tmp_path: Path) -> None:
    c, settings = env["client"], env["settings"]
    rid = env["GY-RS-001"]

    def put(body: dict[str, Any], who: str = "renshe") -> Any:
        return c.put(f"/v1/resources/{rid}/source", json=body, headers=env[who])

    def err(r: Any, status: int, code: str) -> None:
        assert r.status_code == status, r.text
        assert r.json()["error"]["code"] == code

    outside = tmp_path / "outside.csv"
    write_csv(outside, env["rows"])
    err(put({"kind": "csv", "location": str(outside)}), 422, "source_outside_roots")
    err(
        put({"kind": "csv", "location": str(settings.data_dir / "sources" / "../../outside.csv")}),
        422,
        "source_outside_roots",
    )
    err(
        put({"kind": "csv", "location": str(settings.data_dir / "sources" / "nope.csv")}),
        422,
        "source_missing",
    )
    err(
        put(
            {"kind": "csv", "location": str(settings.data_dir / "sources" / "social_security.csv")},
            "minzheng",
        ),
        403,
        "not_provider",
    )
    err(put({"kind": "sql", "location": settings.database_url, "table": "parties"}), 422, "forbidden_source")
    err(
        put({"kind": "sql", "location": "sqlite:///x.db", "query": "SELECT 1; DROP TABLE x"}),
        422,
        "invalid_source",
    )
    err(
        put({"kind": "sql", "location": "sqlite:///x.db", "table": "a", "query": "SELECT 1"}),
        422,
        "invalid_source",
    )
    garbage = settings.data_dir / "sources" / "garbage.parquet"
    garbage.write_bytes(b"not parquet at all")
    err(put({"kind": "parquet", "location": str(garbage)}), 422, "source_unreadable")
    err(put({"kind": "sql", "location": f"sqlite:///{garbage}", "table": "t"}), 422, "source_unreadable")
    thin = settings.data_dir / "sources" / "thin.csv"
    thin.write_text("id_number,name\n", encoding="utf-8")
    err(put({"kind": "csv", "location": str(thin)}), 422, "source_fields_missing")
    r = c.get(f"/v1/resources/{rid}/source", headers=env["minzheng"])
    err(r, 403, "not_provider")
    r = c.get(f"/v1/resources/{rid}/source", headers=env["renshe"])
    assert r.status_code == 200 and r.json()["kind"] == "csv"


def test_sql_sources(env: dict[str, Any]) -> None:
    """A table and a read-only query in a SQLite database under the source roots."""

    c, settings = env["client"], env["settings"]
    rid = env["GY-RS-001"]
    path = settings.data_dir / "sources" / "renshe.sqlite"
    write_sqlite(path, env["rows"], secret=True)
    r = c.put(
        f"/v1/resources/{rid}/source",
        json={"kind": "sql", "location": f"sqlite:///{path}", "table": "insured"},
        headers=env["renshe"],
    )
    assert r.status_code == 200, r.text
    gid = grant(
        env, fields=["id_number", "district", "monthly_base"], row_filter={"monthly_base": {"gte": 3500}}
    )
    r = c.get(f"/v1/data/{rid}", params={"grant": gid}, headers=env["minzheng"])
    assert r.status_code == 200, r.text
    rows = r.json()["rows"]
    assert [row["monthly_base"] for row in rows] == [3000 + 100 * n for n in range(5, len(env["rows"]))]
    assert "secret" not in r.text
    r = c.put(
        f"/v1/resources/{rid}/source",
        json={
            "kind": "sql",
            "location": f"sqlite:///{path}",
            "query": "SELECT * FROM insured WHERE district = '花溪区'",
        },
        headers=env["renshe"],
    )
    assert r.status_code == 200, r.text
    r = c.get(f"/v1/data/{rid}", params={"grant": gid}, headers=env["minzheng"])
    assert {row["district"] for row in r.json()["rows"]} == {"花溪区"}


def test_sqlite_table_rows_encoded_by_sqlite_equal_the_general_path(
    env: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A raw access of a SQLite table has SQLite write the rows' canonical JSON
    (``SourceReader.encoded_rows``): the body, its hash, the truncation flag, the record count and
    the subjects are those of the general path, which the access takes when that is switched off."""

    from ledger.gateway import sources

    c, settings = env["client"], env["settings"]
    rid = env["GY-RS-001"]
    path = settings.data_dir / "sources" / "fast.sqlite"
    write_sqlite(path, env["rows"])
    r = c.put(
        f"/v1/resources/{rid}/source",
        json={"kind": "sql", "location": f"sqlite:///{path}", "table": "insured"},
        headers=env["renshe"],
    )
    assert r.status_code == 200, r.text
    gid = grant(env, fields=["name", "district", "insured", "monthly_base"], row_filter={"insured": True})
    params = {"grant": gid, "limit": 5}

    def access() -> tuple[bytes, str, dict[str, Any]]:
        r = c.get(f"/v1/data/{rid}", params=params, headers=env["minzheng"])
        assert r.status_code == 200, r.text
        return r.content, r.headers["X-Truncated"], entry(env, int(r.headers["X-Access-Event"]))

    encoded_by_sqlite: list[bool] = []
    real = sources.SourceReader.encoded_rows

    def spy(self: sources.SourceReader, *args: Any) -> sources.EncodedRows | None:
        out = real(self, *args)
        encoded_by_sqlite.append(out is not None)
        return out

    monkeypatch.setattr(sources.SourceReader, "encoded_rows", spy)
    fast = access()
    monkeypatch.setattr(sources, "_sqlite_json_canonical", lambda conn: False)
    general = access()
    assert encoded_by_sqlite == [True, False]
    assert fast[0] == general[0] and fast[1] == general[1] == "true"
    insured = [p for p in env["rows"] if p["insured"]][:5]
    assert json.loads(fast[0])["rows"] == [
        {k: p[k] for k in ("name", "district", "insured", "monthly_base")} | {"insured": 1} for p in insured
    ]  # SQLite's BOOLEAN is the integer 1, as the general path reads it
    key = env["ledger"].gateway.subject_key
    for logged in (fast[2], general[2]):
        assert logged["result_hash"] == "0x" + hashlib.sha256(fast[0]).hexdigest()
        assert logged["record_count"] == 5
        assert logged["subjects"] == sorted(subject_hash(key, p["id_number"]) for p in insured)


def test_subject_tracker(env: dict[str, Any]) -> None:
    c, ledger = env["client"], env["ledger"]
    gid = grant(env)
    me = env["rows"][0]["id_number"]
    r = c.get(f"/v1/data/{env['GY-RS-001']}", params={"grant": gid, "limit": 3}, headers=env["minzheng"])
    index = int(r.headers["X-Access-Event"])
    r = c.post("/v1/subjects/tokens", json={"id_number": me}, headers=env["minzheng"])
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden_role"
    r = c.post("/v1/subjects/tokens", json={"id_number": me[:-1] + "0"}, headers=BOOT)
    assert r.status_code == 422, r.text
    r = c.post("/v1/subjects/tokens", json={"id_number": me.lower()}, headers=BOOT)
    assert r.status_code == 201, r.text
    mine = {"Authorization": f"Bearer {r.json()['token']}"}
    listed = c.get("/v1/subjects/accesses", headers=mine).json()
    assert [a["index"] for a in listed["accesses"]] == [index]
    row = listed["accesses"][0]
    assert row["accessor"]["id"] == env["minzheng_id"] and row["accessor"]["name"] == "minzheng"
    assert row["purpose"]["code"] == "social_assistance" and row["purpose"]["label_zh"]
    r = c.get(row["bundle"], headers=mine)
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_anchored"
    ledger.anchorer.anchor_once()
    bundle = c.get(row["bundle"], headers=mine).json()
    assert bundle["leaf_index"] == index and bundle["grant"]["grant_id"] == gid
    assert bundle["grant"]["request"]["signature"].startswith("0x")
    other = c.post(
        "/v1/subjects/tokens", json={"id_number": env["rows"][5]["id_number"]}, headers=BOOT
    ).json()
    theirs = {"Authorization": f"Bearer {other['token']}"}
    assert c.get("/v1/subjects/accesses", headers=theirs).json()["accesses"] == []
    r = c.get(row["bundle"], headers=theirs)
    assert r.status_code == 404 and r.json()["error"]["code"] == "entry_not_found"
    r = c.get("/v1/subjects/accesses", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_subject_token"
    r = c.get("/v1/subjects/accesses", headers=env["minzheng"])  # a party token is not a subject token
    assert r.status_code == 401


def test_parquet_source(env: dict[str, Any]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    c, settings = env["client"], env["settings"]
    rid = env["GY-RS-001"]
    path = settings.data_dir / "sources" / "ss.parquet"
    pq.write_table(pa.Table.from_pylist(env["rows"]), path)
    r = c.put(
        f"/v1/resources/{rid}/source", json={"kind": "parquet", "location": str(path)}, headers=env["renshe"]
    )
    assert r.status_code == 200, r.text
    gid = grant(env, fields=["id_number", "insured"], row_filter={"insured": False})
    r = c.get(f"/v1/data/{rid}", params={"grant": gid}, headers=env["minzheng"])
    assert r.status_code == 200, r.text
    expected = [{"id_number": p["id_number"], "insured": False} for p in env["rows"] if not p["insured"]]
    assert r.json()["rows"] == expected


@pytest.mark.postgres
def test_postgresql_table_source(env: dict[str, Any], pg_server_url: str) -> None:
    """A table in another PostgreSQL database, read through a read-only transaction."""
    import sqlalchemy as sa

    from tests.support.postgres import drop_database, fresh_database

    c = env["client"]
    rid = env["GY-RS-001"]
    url = fresh_database(pg_server_url)
    try:
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "CREATE TABLE insured (id_number TEXT, name TEXT, phone TEXT, district TEXT, "
                "insured BOOLEAN, monthly_base INTEGER)"
            )
            conn.execute(
                sa.text(
                    "INSERT INTO insured VALUES "
                    "(:id_number, :name, :phone, :district, :insured, :monthly_base)"
                ),
                env["rows"],
            )
        engine.dispose()
        r = c.put(
            f"/v1/resources/{rid}/source",
            json={"kind": "sql", "location": url, "table": "insured"},
            headers=env["renshe"],
        )
        assert r.status_code == 200, r.text
        assert "password" not in r.text.lower() or "***" in r.text
        gid = grant(env, mode="aggregate", fields=["district", "monthly_base"])
        r = c.get(
            f"/v1/data/{rid}",
            params={"grant": gid, "group_by": "district", "metrics": "count,sum:monthly_base"},
            headers=env["minzheng"],
        )
        assert r.status_code == 200, r.text
        sums = {g["district"]: g["sum:monthly_base"] for g in r.json()["groups"]}
        assert sums == {
            "云岩区": sum(3000 + 100 * n for n in range(6)),
            "南明区": sum(3000 + 100 * n for n in range(6, 11)),
        }
        # The source connection is read-only: a query source cannot write.
        r = c.put(
            f"/v1/resources/{rid}/source",
            json={
                "kind": "sql",
                "location": url,
                "query": "WITH x AS (DELETE FROM insured RETURNING *) SELECT * FROM x",
            },
            headers=env["renshe"],
        )
        assert r.status_code == 422 and r.json()["error"]["code"] == "source_unreadable", r.text
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM insured").scalar() == len(env["rows"])
        engine.dispose()
    finally:
        drop_database(pg_server_url, url)
