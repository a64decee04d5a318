"""The web console over HTTP (no browser): sessions, CSRF, roles, language, decisions, bundles, files.

The route-by-kind table is in tests/integration/test_authz_matrix.py (``Console`` rows); here are the
rules behind it: what the session cookie looks like, what a POST without its CSRF token or from
another origin gets, that a suspended party's session ends, the language choice, a decision made
through the workbench, and the static files. The world is tests/support/world.py's.
"""

from __future__ import annotations

import csv
import html
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.console.session import SESSION_COOKIE, csrf_for
from ledger.identity.uscc import make_uscc
from ledger.runtime import Ledger
from ledger.settings import Settings
from ledger.types import RequestStatus
from tests.support.world import BOOTSTRAP_TOKEN, World, build_world, request_body


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, World, Ledger]]:
    tmp: Path = tmp_path_factory.mktemp("console")
    settings = Settings(data_dir=tmp / "data", bootstrap_token=BOOTSTRAP_TOKEN, anchor_loop=False)
    with Ledger.open(settings) as ledger, TestClient(create_app(settings, ledger=ledger)) as client:
        yield client, build_world(client, ledger, uscc_base=700), ledger


@pytest.fixture
def client(env: tuple[TestClient, World, Ledger]) -> Iterator[TestClient]:
    env[0].cookies.clear()
    yield env[0]
    env[0].cookies.clear()


@pytest.fixture
def world(env: tuple[TestClient, World, Ledger]) -> World:
    return env[1]


def login(client: TestClient, token: str) -> Any:
    return client.post("/console/login", data={"token": token}, follow_redirects=False)


def form(world: World, who: str, **fields: str) -> dict[str, str]:
    return {"csrf": csrf_for(world.tokens[who]), **fields}


def test_login_sets_a_strict_httponly_cookie_and_lands_on_the_kinds_home(
    client: TestClient, world: World
) -> None:
    homes = {
        "regulator": "/console/dashboard",
        "registrar": "/console/dashboard",
        "provider": "/console/workbench",
        "enterprise": "/console/portal",
        "operator": "/console/portal",
    }
    for who, home in homes.items():
        client.cookies.clear()
        r = login(client, world.tokens[who])
        assert r.status_code == 303 and r.headers["location"] == home, r.text
        cookie = r.headers["set-cookie"]
        assert cookie.startswith(f"{SESSION_COOKIE}={world.tokens[who]};")
        for attribute in ("HttpOnly", "SameSite=strict", "Path=/console", "Max-Age="):
            assert attribute.lower() in cookie.lower(), cookie
        assert "secure" not in cookie.lower()  # plain HTTP here; set over HTTPS
        assert client.get("/console", follow_redirects=False).headers["location"] == home


def test_login_refuses_an_unknown_token_and_follows_only_console_paths(
    client: TestClient, world: World
) -> None:
    r = login(client, "st_wrong")
    assert r.status_code == 401 and "set-cookie" not in r.headers
    assert "令牌无效" in r.text
    r = client.post("/console/login", data={"token": "", "next": "/console/trail"}, follow_redirects=False)
    assert r.status_code == 401
    for target, expected in (
        ("/console/trail?kind=denied", "/console/trail?kind=denied"),
        ("https://evil.example/console", "/console/dashboard"),
        ("//evil.example/console", "/console/dashboard"),
        ("/v1/parties", "/console/dashboard"),
    ):
        r = client.post(
            "/console/login",
            data={"token": world.tokens["regulator"], "next": target},
            follow_redirects=False,
        )
        assert r.headers["location"] == expected, target


def test_a_page_without_a_session_redirects_to_login_with_next(client: TestClient) -> None:
    r = client.get("/console/trail?kind=denied", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/console/login?next=%2Fconsole%2Ftrail%3Fkind%3Ddenied"
    r = client.get("/console/login?next=/console/trail")
    assert r.status_code == 200 and 'name="next" value="/console/trail"' in r.text


def test_posts_need_the_sessions_csrf_token_and_the_same_origin(client: TestClient, world: World) -> None:
    login(client, world.tokens["regulator"])
    page = client.get("/console/dashboard")
    token = csrf_for(world.tokens["regulator"])
    assert f'"X-CSRF-Token": "{token}"' in page.text.replace("&#34;", '"')  # for htmx
    for headers, data in (
        ({}, {}),
        ({}, {"csrf": "0" * 64}),
        ({}, {"csrf": csrf_for(world.tokens["provider"])}),  # another session's token
        ({"Origin": "https://evil.example", "X-CSRF-Token": token}, {}),
    ):
        r = client.post("/console/verify", headers=headers, data=data or None)
        assert (r.status_code, r.headers.get("x-error-code")) == (403, "csrf_failed"), (headers, data)
    r = client.post("/console/verify", headers={"X-CSRF-Token": token, "HX-Request": "true"})
    assert r.status_code == 200 and 'data-testid="verify-intact"' in r.text
    assert "<html" not in r.text  # an htmx fragment, not a page
    r = client.post("/console/verify", data={"csrf": token}, headers={"Origin": str(client.base_url)})
    assert r.status_code == 200
    client.cookies.clear()
    r = client.post(
        "/console/login",
        data={"token": world.tokens["regulator"]},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert (r.status_code, r.headers.get("x-error-code")) == (403, "csrf_failed")  # no login CSRF
    assert "set-cookie" not in r.headers


def test_logout_ends_the_session(client: TestClient, world: World) -> None:
    login(client, world.tokens["provider"])
    r = client.post("/console/logout", data=form(world, "provider"), follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/login"
    assert f'{SESSION_COOKIE}=""' in r.headers["set-cookie"] and "Max-Age=0" in r.headers["set-cookie"]
    assert client.get("/console/workbench", follow_redirects=False).status_code == 303


@pytest.mark.parametrize(
    ("who", "allowed"),
    [
        ("registrar", {"dashboard", "trail", "lineage", "scorecards"}),
        ("regulator", {"dashboard", "trail", "lineage", "scorecards"}),
        ("provider", {"workbench"}),
        ("requester", {"workbench"}),
        ("enterprise", {"portal"}),
        ("operator", {"portal"}),
    ],
)
def test_each_kind_opens_its_pages_and_gets_403_on_the_others(
    client: TestClient, world: World, who: str, allowed: set[str]
) -> None:
    login(client, world.tokens[who])
    for name in ("dashboard", "trail", "lineage", "scorecards", "workbench", "portal"):
        r = client.get(f"/console/{name}", follow_redirects=False)
        if name in allowed:
            assert r.status_code == 200, f"{who} {name}: {r.status_code}"
            assert f'href="/console/{name}" class="active"' in r.text
        else:
            assert (r.status_code, r.headers.get("x-error-code")) == (403, "forbidden_role"), f"{who} {name}"
            assert "无权访问" in r.text and f'href="/console/{name}"' not in r.text  # not in the menu
    assert r.headers["content-security-policy"].startswith("default-src 'self'")
    assert r.headers["x-frame-options"] == "DENY"


def test_a_suspended_partys_session_ends(client: TestClient, world: World) -> None:
    boot = world.auth("registrar")
    created = client.post(
        "/v1/parties",
        json={"kind": "regulator", "name": "停用监管单位", "uscc": make_uscc(4899)},
        headers=boot,
    )
    assert created.status_code == 201, created.text
    token, party_id = created.json()["token"], created.json()["id"]
    login(client, token)
    assert client.get("/console/dashboard").status_code == 200
    assert (
        client.post(f"/v1/parties/{party_id}/suspend", json={"reason": "调查"}, headers=boot).status_code
        == 200
    )
    try:
        r = client.get("/console/dashboard", follow_redirects=False)
        assert (r.status_code, r.headers.get("x-error-code")) == (403, "party_suspended")
        assert f'{SESSION_COOKIE}=""' in r.headers["set-cookie"]
    finally:
        assert client.post(f"/v1/parties/{party_id}/reinstate", headers=boot).status_code == 200


def test_language_defaults_to_zh_switches_and_is_remembered(client: TestClient, world: World) -> None:
    login(client, world.tokens["regulator"])
    zh = client.get("/console/trail")
    assert '<html lang="zh-CN">' in zh.text and "追溯查询" in zh.text and "Trail" not in zh.text
    assert 'href="/console/trail?lang=en"' in zh.text
    en = client.get("/console/trail?lang=en")
    assert '<html lang="en">' in en.text and "追溯查询" not in en.text and "Export CSV" in en.text
    assert "st_lang=en" in en.headers["set-cookie"]
    assert '<html lang="en">' in client.get("/console/dashboard").text  # remembered
    assert '<html lang="zh-CN">' in client.get("/console/dashboard?lang=zh").text
    assert '<html lang="zh-CN">' in client.get("/console/dashboard?lang=xx").text  # unknown: the cookie's


def test_trail_filters_pages_and_exports(client: TestClient, world: World) -> None:
    login(client, world.tokens["regulator"])
    page = client.get("/console/trail", params={"party": world.ids["requester"], "kind": "access"})
    assert page.status_code == 200
    assert f'href="/console/bundles/{world.access_index}"' in page.text
    assert 'href="/console/trail.csv?party=' in page.text
    empty = client.get("/console/trail", params={"kind": "denied", "party": world.ids["requester"]})
    assert 'data-testid="trail-empty"' in empty.text
    r = client.get("/console/trail.csv", params={"kind": "access"})
    assert r.headers["content-disposition"] == 'attachment; filename="sharetrail-trail.csv"'
    rows = list(csv.DictReader(io.StringIO(r.text.lstrip("\ufeff"))))
    assert rows and {row["kind"] for row in rows} == {"access"}
    paged = client.get("/console/trail", params={"before": world.access_index})
    assert f'href="/console/bundles/{world.access_index}"' not in paged.text
    for params, code in (
        ({"kind": "bogus"}, "invalid_filter"),
        ({"since": "yesterday"}, "invalid_time"),
        ({"since": "2026-02-01T00:00", "until": "2026-01-01T00:00"}, "invalid_time_range"),
        ({"before": "-1"}, "validation_failed"),
    ):
        r = client.get("/console/trail", params=params)
        assert (r.status_code, r.headers.get("x-error-code")) == (422, code), params
        assert "<html" in r.text  # a page, not the API's JSON


def test_bundle_viewer_and_download_follow_the_logs_visibility(client: TestClient, world: World) -> None:
    for who in ("requester", "provider", "regulator"):
        client.cookies.clear()
        login(client, world.tokens[who])
        viewer = client.get(f"/console/bundles/{world.access_index}")
        assert viewer.status_code == 200
        assert f'"leaf_index": {world.access_index}' in html.unescape(viewer.text)
        r = client.get(f"/console/bundles/{world.access_index}/download")
        assert r.headers["content-disposition"] == (
            f'attachment; filename="sharetrail-bundle-{world.access_index}.json"'
        )
        assert json.loads(r.content)["leaf_index"] == world.access_index
    client.cookies.clear()
    login(client, world.tokens["outsider"])
    r = client.get(f"/console/bundles/{world.access_index}")
    assert (r.status_code, r.headers.get("x-error-code")) == (404, "entry_not_found")


def test_bundle_viewer_shows_an_access_under_an_open_contract(
    env: tuple[TestClient, World, Ledger], client: TestClient, world: World
) -> None:
    """An access under an open contract has a contract, not a grant, behind it (its bundle's
    ``grant`` section names ``contract_id``): the page names the contract — it used to be a 500."""
    env[2].anchorer.anchor_once()
    for who in ("enterprise", "regulator"):
        client.cookies.clear()
        login(client, world.tokens[who])
        viewer = client.get(f"/console/bundles/{world.contract_access}")
        assert viewer.status_code == 200, viewer.text
        authority = viewer.text.split('data-testid="bundle-authority">', 1)[1].split("</dd>", 1)[0]
        assert f"<code>{world.contract[:10]}…{world.contract[-6:]}</code>" in authority


def test_workbench_decision_is_signed_custodially_and_shows_the_grant(
    env: tuple[TestClient, World, Ledger], client: TestClient, world: World
) -> None:
    ledger = env[2]
    made = client.post(
        "/v1/share-requests", json=request_body(world.resource), headers=world.auth("requester")
    )
    assert made.status_code == 201, made.text
    request_id = made.json()["id"]
    login(client, world.tokens["provider"])
    bench = client.get("/console/workbench")
    assert f'data-request="{request_id}"' in bench.text and "个工作日" in bench.text
    url = f"/console/requests/{request_id}/decision"
    r = client.post(url, data=form(world, "provider", decision="reject", reason=" "))
    assert (r.status_code, r.headers.get("x-error-code")) == (422, "reason_required")
    r = client.post(url, data=form(world, "provider", decision="maybe"))
    assert (r.status_code, r.headers.get("x-error-code")) == (422, "invalid_decision")
    r = client.post(
        url, data=form(world, "provider", decision="approve", reason="同意"), follow_redirects=False
    )
    assert r.status_code == 303, r.text
    provider = ledger.parties.authenticate(world.tokens["provider"])
    row = ledger.sharing.get(provider, request_id)
    assert row.status is RequestStatus.GRANTED and row.grant_id and row.decision_tx and row.reason == "同意"
    assert r.headers["location"] == f"/console/workbench?done=granted&grant={row.grant_id}"
    bench = client.get(r.headers["location"])
    assert f'data-request="{request_id}"' not in bench.text
    assert f'data-grant="{row.grant_id}"' in bench.text and "已批准" in bench.text
    r = client.post(url, data=form(world, "provider", decision="approve"))
    assert (r.status_code, r.headers.get("x-error-code")) == (409, "not_pending")


def test_form_bodies_are_checked(client: TestClient, world: World) -> None:
    login(client, world.tokens["regulator"])
    token = csrf_for(world.tokens["regulator"])
    r = client.post("/console/verify", content=b'{"csrf": "x"}', headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and r.headers.get("x-error-code") == "unsupported_media_type"
    r = client.post(
        "/console/verify",
        content=f"csrf={token}&x=%00".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert (r.status_code, r.headers.get("x-error-code")) == (422, "nul_character")


def test_static_files_are_served_from_the_console_only(client: TestClient) -> None:
    css = client.get("/console/static/console.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert '"WenQuanYi Zen Hei", "Noto Sans CJK SC", "Microsoft YaHei", sans-serif' in css.text
    assert client.get("/console/static/console.js").headers["content-type"].startswith("text/javascript")
    for path in (
        "/console/static/%2e%2e/i18n.py",
        "/console/static/..%2Fi18n.py",
        "/console/static/nope.css",
    ):
        r = client.get(path)
        assert r.status_code == 404 and "def translator" not in r.text, path


def test_the_console_is_not_in_the_openapi_document(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith("/console")]
