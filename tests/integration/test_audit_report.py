"""The audit report (HTML and PDF) through the API, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from pypdf import PdfReader
from sqlalchemy import text

from ledger.identity.uscc import make_uscc
from tests.integration.test_audit_stats import error, party, reported
from tests.integration.test_gateway import BOOT, env, grant  # noqa: F401 - the fixture


def pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


def seed(env: dict[str, Any]) -> dict[str, str]:  # noqa: F811
    c, ledger = env["client"], env["ledger"]
    reg = party(env, "regulator", 690)
    gid = grant(env, fields=["district"])
    for _ in range(2):
        assert (
            c.get(f"/v1/data/{env['GY-RS-001']}", params={"grant": gid}, headers=env["minzheng"]).status_code
            == 200
        )
    for _ in range(5):  # a burst of refusals: an alert
        assert c.get(f"/v1/data/{env['GY-RS-001']}", headers=env["zhujian"]).status_code == 403
    op = party(env, "operator", 691)
    reported(env, op, "other", datetime.now(UTC), resource=env["GY-RS-002"])
    # a department whose name is markup: the report must show it as text
    r = c.post(
        "/v1/parties",
        json={"kind": "department", "name": "<script>alert(1)</script>", "uscc": make_uscc(692)},
        headers=BOOT,
    )
    assert r.status_code == 201, r.text
    assert ledger.anchorer.anchor_once() is not None
    return reg


def latest(env: dict[str, Any]) -> Any:  # noqa: F811
    checkpoint = env["ledger"].log.log.latest_checkpoint()
    assert checkpoint is not None
    return checkpoint


def test_html_report(env: dict[str, Any]) -> None:  # noqa: F811
    c = env["client"]
    reg = seed(env)
    anchored = latest(env)
    r = c.get("/v1/audit/report", headers=reg)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.headers["content-disposition"].startswith('inline; filename="sharetrail-audit-')
    html = r.text
    assert html.startswith("<!doctype html>") and '<html lang="zh-CN">' in html
    assert "完整 INTACT" in html and "NOT INTACT" not in html
    assert html.count("<svg") == 4 and "<script" not in html  # charts inline, no JavaScript
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # the anchored root relied on: size, root, transaction, block
    root = "0x" + bytes(anchored.root).hex()
    assert root in html and anchored.tx_hash in html and f">{anchored.block_number}<" in html
    assert f'<td class="n">{anchored.size}</td>' in html
    assert "denied_burst" in html and "社会保险参保信息" in html
    # the exchanges table names each resource's provider (it showed the party's hex id)
    provider = env["ledger"].catalog.get(env["GY-RS-001"]).provider_id
    name = env["ledger"].parties.get(provider).name
    assert f"<td>GY-RS-001</td><td>{name}</td>" in html and f"<code>{provider}</code>" not in html

    # scope: one resource — its exchanges only, its provider's scorecard only
    scoped = c.get("/v1/audit/report", params={"resource": "GY-RS-002"}, headers=reg).text
    assert "GY-RS-002" in scoped and "denied_burst" not in scoped  # the refusals were of GY-RS-001
    assert re.search(r"本期数据交换 <span class=\"en\">Exchanges in the period</span>：1；", scoped)


def test_pdf_report_states_the_verification_result(env: dict[str, Any]) -> None:  # noqa: F811
    c, ledger = env["client"], env["ledger"]
    reg = seed(env)
    anchored = latest(env)
    r = c.get("/v1/audit/report", params={"format": "pdf"}, headers=reg)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    assert r.headers["content-disposition"].startswith('attachment; filename="sharetrail-audit-')
    assert r.content.startswith(b"%PDF")
    body = pdf_text(r.content)
    assert "完整性验证 Integrity verification" in body and "完整 INTACT" in body and "NOT INTACT" not in body
    assert "数据共享审计报告" in body and "denied_burst" in body
    root = "0x" + bytes(anchored.root).hex()
    assert root[:34] in body and root[34:] in body  # split over two lines in its cell

    # altered behind the triggers' back: the next report says so, naming the record
    victim = anchored.size - 1
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
    broken = pdf_text(c.get("/v1/audit/report", params={"format": "pdf"}, headers=reg).content)
    assert "发现篡改 NOT INTACT" in broken
    assert re.search(rf"\n{victim}\s", broken), broken


def test_report_rejections(env: dict[str, Any]) -> None:  # noqa: F811
    c = env["client"]
    reg = party(env, "regulator", 693)
    for who in ("minzheng", "qiye"):
        assert error(c.get("/v1/audit/report", headers=env[who])) == (403, "forbidden_role"), who
    assert c.get("/v1/audit/report", headers=BOOT).status_code == 200  # the registrar
    now = datetime.now(UTC)
    cases: list[tuple[dict[str, str], tuple[int, str]]] = [
        ({"since": "last month"}, (422, "validation_failed")),
        ({"format": "docx"}, (422, "validation_failed")),
        (
            {"since": now.isoformat(), "until": (now - timedelta(days=1)).isoformat()},
            (422, "invalid_time_range"),
        ),
        (
            {"since": (now - timedelta(days=367)).isoformat(), "until": now.isoformat()},
            (422, "invalid_time_range"),
        ),
        ({"resource": "GY-NOPE-404"}, (404, "resource_not_found")),
        ({"party": "0" * 32}, (404, "party_not_found")),
    ]
    for params, expected in cases:
        assert error(c.get("/v1/audit/report", params=params, headers=reg)) == expected, params
    # a year is allowed (alerts evaluated in 92-day windows)
    year = {"since": (now - timedelta(days=366)).isoformat(), "until": now.isoformat()}
    assert c.get("/v1/audit/report", params=year, headers=reg).status_code == 200
