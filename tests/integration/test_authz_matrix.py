"""Authorization matrix: every route of the app × every kind of caller × own / other's objects.

The expectations are one table (:data:`MATRIX`). The routes are enumerated from ``app.routes``, so a
route added without a row here fails :func:`test_every_route_has_a_matrix_row`. Columns:

- ``registrar``, ``operator``, ``enterprise``, ``regulator``: one party of that kind;
- ``provider``: the department that owns the resources (the *own* side of a request, grant, dispute
  or log entry, as data provider); ``requester``: the department that asked for the data, filed
  the dispute and is the accessor of the log entry (the other *own* side); ``outsider``: a
  department with no part in any of it (*other's* objects).

Each cell is ``OK`` (authorization passed: 2xx, or 409 when the object's state forbids the step), a
403 with the exact error code (known caller, wrong role — the object's existence is no secret to
it), or a 404 with the exact code (the object exists but must not leak to this caller). Without a
token every non-public route answers 401 ``missing_token``; with an unknown one 401
``invalid_token``. Public routes answer without a token.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from api.app import create_app
from api.console.session import SESSION_COOKIE, csrf_for
from ledger.identity.id_number import make_id_number
from ledger.identity.uscc import make_uscc
from ledger.runtime import Ledger
from ledger.settings import Settings
from tests.support.world import (
    BOOTSTRAP_TOKEN,
    World,
    access_event,
    application_body,
    build_world,
    contract_body,
    request_body,
    resource_body,
)

CALLERS = ("registrar", "provider", "requester", "outsider", "operator", "enterprise", "regulator")

OK = "ok"
Cell = str | tuple[int, str]


def F(code: str) -> tuple[int, str]:
    """403: the caller is known and may know the object exists, but its role may not do this."""
    return (403, code)


def H(code: str) -> tuple[int, str]:
    """404: the object exists, but its existence must not leak to this caller."""
    return (404, code)


PUBLIC = "public"
SUBJECT = "subject"  # a data subject's token, not a party's
ANY_PARTY: tuple[Cell, ...] = (OK,) * 7
ROLE = F("forbidden_role")
NPROV, NREQ, NREG, NFIL = F("not_provider"), F("not_requester"), F("not_registrar"), F("not_filer")
NGRT, NREV = F("not_grantee"), F("not_authorized_to_revoke")
HREQ, HGRT, HDIS = H("request_not_found"), H("grant_not_found"), H("dispute_not_found")
HENT = H("entry_not_found")
HCON, HAPP, HDEC = H("contract_not_found"), H("application_not_found"), H("declaration_not_found")
NPTY, NCHG, NRVW = F("not_a_party"), F("not_authorized_to_change"), F("not_reviewer")


@dataclass(frozen=True)
class Console:
    """A web-console route (api/routes/console.py): a session cookie instead of a bearer token, HTML
    answers with the error code in ``X-Error-Code``, a CSRF token on every POST. Without a session a
    page redirects to the login form (303) and a POST answers 401 ``login_required``."""

    cells: tuple[Cell, ...]


def C(*cells: Cell) -> Console:
    return Console(cells)


AUDIT_PAGE = C(OK, ROLE, ROLE, ROLE, ROLE, ROLE, OK)

# fmt: off
MATRIX: dict[tuple[str, str], str | tuple[Cell, ...] | Console] = {
    #                                                    regis. prov.  reqst. outsd. oper.  entpr. regul.
    # public: no token needed
    ("GET", "/healthz"):                                PUBLIC,
    ("POST", "/rpc"):                                   PUBLIC,
    ("GET", "/v1/purposes"):                            PUBLIC,
    ("GET", "/openapi.json"):                           PUBLIC,
    ("GET", "/docs"):                                   PUBLIC,
    ("GET", "/docs/oauth2-redirect"):                   PUBLIC,
    ("GET", "/redoc"):                                  PUBLIC,
    # parties: the directory is open to every party; registration and suspension are the registrar's
    ("POST", "/v1/parties"):                            (OK,    ROLE,  ROLE,  ROLE,  ROLE,  ROLE,  ROLE),
    ("GET", "/v1/parties"):                             ANY_PARTY,
    ("GET", "/v1/parties/me"):                          ANY_PARTY,
    ("GET", "/v1/parties/{party_id}"):                  ANY_PARTY,
    ("POST", "/v1/parties/{party_id}/suspend"):         (OK,    ROLE,  ROLE,  ROLE,  ROLE,  ROLE,  ROLE),
    ("POST", "/v1/parties/{party_id}/reinstate"):       (OK,    ROLE,  ROLE,  ROLE,  ROLE,  ROLE,  ROLE),
    # the log: checkpoints and proofs for every party; raw entries for auditors and the operator;
    # gateway batches from the operator; a bundle for the accessor, its provider and the auditors
    ("GET", "/v1/log/checkpoint"):                      ANY_PARTY,
    ("GET", "/v1/log/proof/inclusion"):                 ANY_PARTY,
    ("GET", "/v1/log/proof/consistency"):               ANY_PARTY,
    ("GET", "/v1/log/entries"):                         (OK,    ROLE,  ROLE,  ROLE,  OK,    ROLE,  OK),
    ("POST", "/v1/access-events"):                      (ROLE,  ROLE,  ROLE,  ROLE,  OK,    ROLE,  ROLE),
    ("GET", "/v1/proofs/access/{index}"):               (OK,    OK,    OK,    HENT,  HENT,  HENT,  OK),
    # C2SP tlog-tiles: the signed checkpoint and hash tiles like the proofs; entry bundles like entries
    ("GET", "/v1/log/tlog/checkpoint"):                 ANY_PARTY,
    ("GET", "/v1/log/tlog/tile/{level:int}/{path:path}"): ANY_PARTY,
    ("GET", "/v1/log/tlog/tile/entries/{path:path}"):   (OK,    ROLE,  ROLE,  ROLE,  OK,    ROLE,  OK),
    # the catalog: browsing for every party; publishing for departments (谁拥有谁定级); new versions
    # and their signatures by the provider
    ("POST", "/v1/resources"):                          (ROLE,  OK,    OK,    OK,    ROLE,  ROLE,  ROLE),
    ("GET", "/v1/resources"):                           ANY_PARTY,
    ("GET", "/v1/resources/{resource_id}"):             ANY_PARTY,
    ("PUT", "/v1/resources/{resource_id}"):             (NPROV, OK,    NPROV, NPROV, NPROV, NPROV, NPROV),
    ("POST", "/v1/resources/{resource_id}/signature"):  (NPROV, OK,    NPROV, NPROV, NPROV, NPROV, NPROV),
    ("GET", "/v1/resources/{resource_id}/versions"):    ANY_PARTY,
    # data sources: registered by the provider; seen by the provider and the supervisors
    ("PUT", "/v1/resources/{resource_id}/source"):      (NPROV, OK,    NPROV, NPROV, NPROV, NPROV, NPROV),
    ("GET", "/v1/resources/{resource_id}/source"):      (OK,    OK,    NPROV, NPROV, NPROV, NPROV, OK),
    # the data gateway: only the grantee, under its grant (each refusal is itself logged)
    ("GET", "/v1/data/{resource_id}"):                  (NGRT,  NGRT,  OK,    NGRT,  NGRT,  NGRT,  NGRT),
    ("POST", "/v1/data/{resource_id}"):                 (NGRT,  NGRT,  OK,    NGRT,  NGRT,  NGRT,  NGRT),
    # the data-subject tracker: the registrar issues tokens; reading takes the subject's own token
    ("POST", "/v1/subjects/tokens"):                    (OK,    ROLE,  ROLE,  ROLE,  ROLE,  ROLE,  ROLE),
    ("GET", "/v1/subjects/accesses"):                   SUBJECT,
    ("GET", "/v1/subjects/accesses/{index}/bundle"):    SUBJECT,
    # share requests: departments ask; each party lists its own; the two sides and auditors see one
    ("POST", "/v1/share-requests"):                     (ROLE,  OK,    OK,    OK,    ROLE,  ROLE,  ROLE),
    ("GET", "/v1/share-requests"):                      ANY_PARTY,
    ("GET", "/v1/share-requests/{request_id}"):         (OK,    OK,    OK,    HREQ,  HREQ,  HREQ,  OK),
    ("POST", "/v1/share-requests/{request_id}/signature"):
                                                        (NREQ,  NREQ,  OK,    HREQ,  HREQ,  HREQ,  NREQ),
    ("POST", "/v1/share-requests/{request_id}/decision"):
                                                        (NPROV, OK,    NPROV, HREQ,  HREQ,  HREQ,  NPROV),
    ("POST", "/v1/share-requests/{request_id}/decision/signature"):
                                                        (NPROV, OK,    NPROV, HREQ,  HREQ,  HREQ,  NPROV),
    ("POST", "/v1/share-requests/{request_id}/cosign"): (OK,    NREG,  NREG,  HREQ,  HREQ,  HREQ,  NREG),
    ("POST", "/v1/share-requests/{request_id}/cosign/signature"):
                                                        (OK,    NREG,  NREG,  HREQ,  HREQ,  HREQ,  NREG),
    # grants: the two sides and auditors see one; it authorizes its grantee only; the provider or the
    # registrar revokes
    ("GET", "/v1/grants/{grant_id}"):                   (OK,    OK,    OK,    HGRT,  HGRT,  HGRT,  OK),
    ("GET", "/v1/grants/{grant_id}/authorization"):     (NGRT,  NGRT,  OK,    HGRT,  HGRT,  HGRT,  NGRT),
    ("POST", "/v1/grants/{grant_id}/revoke"):           (OK,    OK,    NREV,  HGRT,  HGRT,  HGRT,  NREV),
    ("POST", "/v1/grants/{grant_id}/revoke/signature"): (OK,    OK,    NREV,  HGRT,  HGRT,  HGRT,  NREV),
    # disputes (疑义数据校核): departments file; the filer, the provider and auditors see one; the
    # filer signs its filing, the provider answers
    ("POST", "/v1/disputes"):                           (ROLE,  OK,    OK,    OK,    ROLE,  ROLE,  ROLE),
    ("GET", "/v1/disputes"):                            ANY_PARTY,
    ("GET", "/v1/disputes/{dispute_id}"):               (OK,    OK,    OK,    HDIS,  HDIS,  HDIS,  OK),
    ("POST", "/v1/disputes/{dispute_id}/signature"):    (NFIL,  NFIL,  OK,    HDIS,  HDIS,  HDIS,  NFIL),
    ("POST", "/v1/disputes/{dispute_id}/answer"):       (NPROV, OK,    NPROV, HDIS,  HDIS,  HDIS,  NPROV),
    ("POST", "/v1/disputes/{dispute_id}/answer/signature"):
                                                        (NPROV, OK,    NPROV, HDIS,  HDIS,  HDIS,  NPROV),
    # audit: the trail, the integrity audit and the alerts are the regulator's and the registrar's
    ("GET", "/v1/audit/trail"):                         (OK,    ROLE,  ROLE,  ROLE,  ROLE,  ROLE,  OK),
    ("POST", "/v1/audit/verify"):                       (OK,    ROLE,  ROLE,  ROLE,  ROLE,  ROLE,  OK),
    ("GET", "/v1/audit/alerts"):                        (OK,    ROLE,  ROLE,  ROLE,  ROLE,  ROLE,  OK),
    # alerts the monitor stored: read by the auditors, acknowledged by a regulator only
    ("GET", "/v1/audit/alerts/raised"):                 (OK,    ROLE,  ROLE,  ROLE,  ROLE,  ROLE,  OK),
    ("POST", "/v1/audit/alerts/{alert_id}/acknowledge"):
                                                        (ROLE,  ROLE,  ROLE,  ROLE,  ROLE,  ROLE,  OK),
    # statistics: auditors see every scorecard, a department its own; lineage: auditors and the provider;
    # the audit report: auditors
    ("GET", "/v1/audit/statistics"):                    (OK,    OK,    OK,    OK,    ROLE,  ROLE,  OK),
    ("GET", "/v1/audit/lineage/{resource_id}"):         (OK,    OK,    NPROV, NPROV, NPROV, NPROV, OK),
    ("GET", "/v1/audit/report"):                        (OK,    ROLE,  ROLE,  ROLE,  ROLE,  ROLE,  OK),
    # the web console: pages by party kind (ledger.audit.console_queries.PAGES); bundles as the API's
    ("GET", "/console"):                                C(*ANY_PARTY),
    ("GET", "/console/login"):                          PUBLIC,
    ("POST", "/console/login"):                         C(*ANY_PARTY),
    ("POST", "/console/logout"):                        C(*ANY_PARTY),
    ("GET", "/console/dashboard"):                      AUDIT_PAGE,
    ("POST", "/console/verify"):                        AUDIT_PAGE,
    ("GET", "/console/trail"):                          AUDIT_PAGE,
    ("GET", "/console/trail.csv"):                      AUDIT_PAGE,
    ("GET", "/console/lineage"):                        AUDIT_PAGE,
    ("GET", "/console/scorecards"):                     AUDIT_PAGE,
    ("GET", "/console/workbench"):                      C(ROLE,  OK,    OK,    OK,    ROLE,  ROLE,  ROLE),
    ("POST", "/console/requests/{request_id}/decision"):
                                                        C(ROLE,  OK,    NPROV, HREQ,  ROLE,  ROLE,  ROLE),
    ("GET", "/console/portal"):                         C(ROLE,  ROLE,  ROLE,  ROLE,  OK,    OK,    ROLE),
    ("GET", "/console/bundles/{index}"):                C(OK,    OK,    OK,    HENT,  HENT,  HENT,  OK),
    ("GET", "/console/bundles/{index}/download"):       C(OK,    OK,    OK,    HENT,  HENT,  HENT,  OK),
    ("GET", "/console/static/{path:path}"):             PUBLIC,
    # opening (issue 6): the operator proposes; the contract's parties and the supervisors see it; the
    # enterprise and providers sign; its operator or the registrar changes its status; enterprises
    # apply, the provider and the operator review; the registrar keeps the negative list; enterprises
    # declare derived products, seen by themselves, the operator and the supervisors
    ("POST", "/v1/open-contracts"):                     (ROLE,  ROLE,  ROLE,  ROLE,  OK,    ROLE,  ROLE),
    ("GET", "/v1/open-contracts"):                      ANY_PARTY,
    ("GET", "/v1/open-contracts/{contract_id}"):        (OK,    OK,    HCON,  HCON,  OK,    OK,    OK),
    ("POST", "/v1/open-contracts/{contract_id}/sign"):  (NPTY,  OK,    HCON,  HCON,  NPTY,  OK,    NPTY),
    ("POST", "/v1/open-contracts/{contract_id}/signature"):
                                                        (OK,    OK,    HCON,  HCON,  OK,    OK,    NPTY),
    ("POST", "/v1/open-contracts/{contract_id}/suspend"):
                                                        (OK,    NCHG,  HCON,  HCON,  OK,    NCHG,  NCHG),
    ("POST", "/v1/open-contracts/{contract_id}/resume"):
                                                        (OK,    NCHG,  HCON,  HCON,  OK,    NCHG,  NCHG),
    ("POST", "/v1/open-contracts/{contract_id}/terminate"):
                                                        (OK,    NCHG,  HCON,  HCON,  OK,    NCHG,  NCHG),
    ("POST", "/v1/open-applications"):                  (ROLE,  ROLE,  ROLE,  ROLE,  ROLE,  OK,    ROLE),
    ("GET", "/v1/open-applications"):                   ANY_PARTY,
    ("GET", "/v1/open-applications/{application_id}"):  (OK,    OK,    HAPP,  HAPP,  OK,    OK,    OK),
    ("POST", "/v1/open-applications/{application_id}/review"):
                                                        (NRVW,  OK,    HAPP,  HAPP,  OK,    NRVW,  NRVW),
    ("POST", "/v1/open-applications/{application_id}/signature"):
                                                        (NPTY,  OK,    HAPP,  HAPP,  OK,    OK,    NPTY),
    ("GET", "/v1/negative-list"):                       ANY_PARTY,
    ("POST", "/v1/negative-list"):                      (OK,    ROLE,  ROLE,  ROLE,  ROLE,  ROLE,  ROLE),
    ("POST", "/v1/declarations"):                       (ROLE,  ROLE,  ROLE,  ROLE,  ROLE,  OK,    ROLE),
    ("GET", "/v1/declarations"):                        (OK,    ROLE,  ROLE,  ROLE,  OK,    OK,    OK),
    ("GET", "/v1/declarations/{declaration_id}"):       (OK,    HDEC,  HDEC,  HDEC,  OK,    OK,    OK),
}
# fmt: on

OK_STATUSES = {200, 201, 409}
AUTHZ_CODES = {"missing_token", "invalid_token", "party_suspended", "forbidden_role"}
_seq = itertools.count(1)


def app_routes(app: FastAPI) -> set[tuple[str, str]]:
    """Every (method, path) the app serves, included routers expanded (HEAD, answered with GET, is
    not a route of its own)."""
    found: set[tuple[str, str]] = set()
    for route in iter_route_contexts(app.routes):
        assert route.path is not None and route.methods, f"a route that is not HTTP: {route.original_route!r}"
        found.update((method, route.path) for method in route.methods if method != "HEAD")
    return found


def _path_value(world: World, name: str, path: str = "") -> str:
    if name == "resource_id" and (path.endswith("/source") or path.startswith("/v1/data/")):
        return world.open_resource  # the resource with a data source and a grant
    if name == "grant_id" and "/revoke" in path:
        return world.revocable_grant
    values = {
        "party_id": world.ids["victim"],
        "resource_id": world.resource,
        "request_id": world.request,
        "grant_id": world.grant,
        "dispute_id": world.dispute,
        "index": str(world.access_index),
        "contract_id": world.contract,
        "application_id": world.application,
        "declaration_id": world.declaration,
        "alert_id": str(world.alert),
    }
    return values[name]


def _query(world: World, method: str, path: str) -> str:
    if method != "GET":  # POST /v1/data takes its parameters in the body (the query: 422)
        return ""
    return {
        "/v1/log/proof/inclusion": "?index=0&tree_size=1",
        "/v1/log/proof/consistency": "?first=1&second=1",
        "/v1/log/entries": "?start=0&end=1",
        "/v1/data/{resource_id}": f"?grant={world.grant}",
    }.get(path, "")


def _body(world: World, method: str, path: str) -> Any:
    """A valid body for the route, so that only authorization can stop the request."""
    n = next(_seq)
    signature = {"signature": "0x" + "11" * 65}
    bodies: dict[tuple[str, str], Any] = {
        ("POST", "/rpc"): {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
        ("POST", "/v1/parties"): {"kind": "department", "name": f"新单位 {n}", "uscc": make_uscc(5000 + n)},
        ("POST", "/v1/parties/{party_id}/suspend"): {"reason": "authorization matrix"},
        ("POST", "/v1/access-events"): [
            access_event(f"matrix-{n}", world.ids["requester"], world.ids["provider"])
        ],
        ("POST", "/v1/resources"): resource_body(f"GY-MATRIX-{n:04d}"),
        ("PUT", "/v1/resources/{resource_id}"): resource_body("GY-HOSTILE-001"),
        ("POST", "/v1/share-requests"): request_body(world.resource),
        ("POST", "/v1/share-requests/{request_id}/signature"): signature,
        ("POST", "/v1/share-requests/{request_id}/decision"): {"approve": False, "reason": "授权矩阵"},
        ("POST", "/v1/share-requests/{request_id}/decision/signature"): signature,
        ("POST", "/v1/grants/{grant_id}/revoke"): {"reason": "授权矩阵"},
        ("POST", "/v1/disputes"): {"resource_id": world.resource, "reason": "授权矩阵"},
        ("POST", "/v1/disputes/{dispute_id}/answer"): {"answer": "核实无误"},
        ("POST", "/v1/resources/{resource_id}/signature"): signature,
        ("POST", "/v1/share-requests/{request_id}/cosign/signature"): signature,
        ("POST", "/v1/grants/{grant_id}/revoke/signature"): signature,
        ("POST", "/v1/disputes/{dispute_id}/signature"): signature,
        ("POST", "/v1/disputes/{dispute_id}/answer/signature"): signature,
        ("PUT", "/v1/resources/{resource_id}/source"): {"kind": "csv", "location": world.source_location},
        ("POST", "/v1/data/{resource_id}"): {"grant": world.grant},
        ("POST", "/v1/open-contracts"): contract_body(world.ids["enterprise"], world.contract_resource),
        ("POST", "/v1/open-contracts/{contract_id}/signature"): signature,
        ("POST", "/v1/open-contracts/{contract_id}/suspend"): {"reason": "授权矩阵"},
        ("POST", "/v1/open-contracts/{contract_id}/resume"): {"reason": "授权矩阵"},
        ("POST", "/v1/open-contracts/{contract_id}/terminate"): {"reason": "授权矩阵"},
        ("POST", "/v1/open-applications"): application_body(world.application_resource),
        ("POST", "/v1/open-applications/{application_id}/review"): {"approve": False, "reason": "授权矩阵"},
        ("POST", "/v1/open-applications/{application_id}/signature"): signature,
        ("POST", "/v1/negative-list"): {"resource_id": world.resource, "reason": "授权矩阵"},
        ("POST", "/v1/declarations"): {
            "contract_id": world.contract,
            "name": f"衍生产品 {n}",
            "inputs": [world.contract_access],
            "purpose": "credit_assessment",
            "release_mode": "internal",
        },
        ("POST", "/v1/audit/alerts/{alert_id}/acknowledge"): {"note": "授权矩阵"},
        ("POST", "/v1/subjects/tokens"): {"id_number": make_id_number("520103", date(1990, 1, 1), n % 1000)},
    }
    return bodies.get((method, path))


def call(client: TestClient, world: World, method: str, path: str, headers: dict[str, str]) -> Any:
    url = path
    for name in (
        "party_id",
        "resource_id",
        "request_id",
        "grant_id",
        "dispute_id",
        "index",
        "contract_id",
        "application_id",
        "declaration_id",
        "alert_id",
    ):
        if "{" + name + "}" in url:
            url = url.replace("{" + name + "}", _path_value(world, name, path))
    if path.startswith("/v1/log/tlog/"):  # the first leaf's tile and bundle (the world anchored it)
        url = url.replace("{level:int}", "0").replace("{path:path}", "000.p/1")
    url = url.replace("{path:path}", "console.css")
    url += _query(world, method, path)
    body = _body(world, method, path)
    return (
        client.request(method, url, headers=headers, json=body)
        if body is not None
        else client.request(method, url, headers=headers)
    )


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, World]]:
    tmp: Path = tmp_path_factory.mktemp("authz")
    settings = Settings(data_dir=tmp / "data", bootstrap_token=BOOTSTRAP_TOKEN, anchor_loop=False)
    with Ledger.open(settings) as ledger, TestClient(create_app(settings, ledger=ledger)) as client:
        yield client, build_world(client, ledger)


def _error(r: Any) -> dict[str, Any]:
    body = r.json()
    assert set(body) == {"error"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error


def test_every_route_has_a_matrix_row(env: tuple[TestClient, World]) -> None:
    client, _ = env
    served = app_routes(client.app)  # type: ignore[arg-type]
    missing = sorted(served - set(MATRIX))
    stale = sorted(set(MATRIX) - served)
    assert not missing, f"routes without an authorization-matrix row (add one to MATRIX): {missing}"
    assert not stale, f"MATRIX rows for routes the app no longer serves: {stale}"


def _matrix_params() -> list[Any]:
    return [pytest.param(method, path, id=f"{method} {path}") for method, path in sorted(MATRIX)]


@pytest.mark.parametrize(("method", "path"), _matrix_params())
def test_matrix(env: tuple[TestClient, World], method: str, path: str) -> None:
    client, world = env
    row = MATRIX[(method, path)]
    if row == SUBJECT:
        r = call(client, world, method, path, {})
        assert r.status_code == 401 and _error(r)["code"] == "missing_token", r.text
        for caller in (*CALLERS, "bad"):
            token = world.tokens.get(caller, "st_not-a-token")
            r = call(client, world, method, path, {"Authorization": f"Bearer {token}"})
            assert r.status_code == 401 and _error(r)["code"] == "invalid_subject_token", (
                f"{caller}: {r.text}"
            )
        r = call(client, world, method, path, {"Authorization": f"Bearer {world.subject_token}"})
        assert r.status_code == 200, r.text
        return
    if isinstance(row, Console):
        check_console(client, world, method, path, row)
        return
    if row == PUBLIC:
        for headers in ({}, {"Authorization": "Bearer st_not-a-token"}, world.auth("enterprise")):
            r = call(client, world, method, path, headers)
            assert r.status_code == 200, f"public {method} {path} with {headers}: {r.status_code} {r.text}"
        return
    assert isinstance(row, tuple) and len(row) == len(CALLERS)
    r = call(client, world, method, path, {})
    assert r.status_code == 401 and _error(r)["code"] == "missing_token", r.text
    assert r.headers["www-authenticate"] == "Bearer"
    r = call(client, world, method, path, {"Authorization": "Bearer st_not-a-token"})
    assert r.status_code == 401 and _error(r)["code"] == "invalid_token", r.text
    r = call(client, world, method, path, {"Authorization": "Basic cmVnaXN0cmFyOnB3"})
    assert r.status_code == 401 and _error(r)["code"] == "missing_token", r.text
    # denials first, so that a permitted state change (a decision, a revocation) cannot mask one
    cells = sorted(zip(CALLERS, row, strict=True), key=lambda c: c[1] == OK)
    for caller, expected in cells:
        r = call(client, world, method, path, world.auth(caller))
        where = f"{method} {path} as {caller}"
        if isinstance(expected, str):  # OK
            assert r.status_code in OK_STATUSES, f"{where}: expected to pass, got {r.status_code} {r.text}"
            if r.status_code >= 400:
                assert _error(r)["code"] not in AUTHZ_CODES, f"{where}: {r.text}"
        else:
            status, code = expected
            assert (r.status_code, _error(r)["code"] if r.status_code >= 400 else None) == (status, code), (
                f"{where}: expected {status} {code}, got {r.status_code} {r.text}"
            )


def console_call(
    client: TestClient, world: World, method: str, path: str, caller: str | None, *, csrf: bool = True
) -> Any:
    """A console request as ``caller``'s browser session (``None``: no session; ``"bad"``: a cookie
    with an unknown token). The client keeps no cookies between calls."""
    url = path.replace("{index}", str(world.access_index)).replace("{request_id}", world.request)
    token = world.tokens.get(caller or "", "st_not-a-token")
    headers = {"Cookie": f"{SESSION_COOKIE}={token}"} if caller is not None else {}
    form: dict[str, str] = {"csrf": csrf_for(token)} if csrf and caller is not None else {}
    if path == "/console/login":
        headers, form = {}, {"token": token}
    elif path.endswith("/decision"):
        form.update(decision="reject", reason="授权矩阵")
    try:
        return client.request(method, url, headers=headers, data=form or None, follow_redirects=False)
    finally:
        client.cookies.clear()


def check_console(client: TestClient, world: World, method: str, path: str, row: Console) -> None:
    def code(r: Any) -> str | None:
        value: str | None = r.headers.get("x-error-code")
        return value

    if path == "/console/login":  # the login form itself: a known token opens a session, others do not
        r = console_call(client, world, method, path, "bad")
        assert r.status_code == 401 and "set-cookie" not in r.headers, r.text
    else:
        for caller in (None, "bad"):  # no session, or a stale one: back to the login form
            r = console_call(client, world, method, path, caller)
            if method == "GET":
                assert r.status_code == 303, r.text
                assert r.headers["location"].startswith("/console/login?next="), r.headers
            else:
                assert (r.status_code, code(r)) == (401, "login_required"), r.text
    if method == "POST" and path != "/console/login":  # a session without its CSRF token is refused
        r = console_call(client, world, method, path, "regulator", csrf=False)
        assert (r.status_code, code(r)) == (403, "csrf_failed"), r.text
    cells = sorted(zip(CALLERS, row.cells, strict=True), key=lambda c: c[1] == OK)
    for caller, expected in cells:
        r = console_call(client, world, method, path, caller)
        where = f"{method} {path} as {caller}"
        if isinstance(expected, str):  # OK
            assert r.status_code in {200, 303, 409}, f"{where}: expected to pass, got {r.status_code}"
            assert code(r) not in AUTHZ_CODES, f"{where}: {code(r)}"
        else:
            assert (r.status_code, code(r)) == expected, f"{where}: expected {expected}, got {r.status_code}"


# (/v1/proofs/access/{index} is not here: which log indices exist is public — the checkpoint gives the
# log size to every party — so its 404 hides whose entry it is, not that it exists.)
HIDDEN_KINDS = {
    "/v1/share-requests/{request_id}": ("request_id", "0" * 32),
    "/v1/grants/{grant_id}": ("grant_id", "0x" + "00" * 32),
    "/v1/disputes/{dispute_id}": ("dispute_id", "0" * 32),
}


@pytest.mark.parametrize("path", sorted(HIDDEN_KINDS))
def test_hidden_object_is_indistinguishable_from_a_missing_one(
    env: tuple[TestClient, World], path: str
) -> None:
    """A 404 that hides an object must say exactly what the 404 of a missing object says."""
    client, world = env
    name, missing_value = HIDDEN_KINDS[path]
    real = _path_value(world, name, path)
    hidden = client.get(path.replace("{" + name + "}", real), headers=world.auth("outsider"))
    missing = client.get(path.replace("{" + name + "}", missing_value), headers=world.auth("outsider"))
    assert hidden.status_code == missing.status_code == 404
    assert _error(hidden)["code"] == _error(missing)["code"]
    assert _error(hidden)["message"].replace(real, "<id>") == _error(missing)["message"].replace(
        missing_value, "<id>"
    )
    assert set(hidden.headers) - {"content-length"} == set(missing.headers) - {"content-length"}


@pytest.mark.parametrize(
    ("path", "key"),
    [("/v1/share-requests", "request"), ("/v1/disputes", "dispute")],
)
def test_lists_show_only_own_objects(env: tuple[TestClient, World], path: str, key: str) -> None:
    client, world = env
    wanted = getattr(world, key)
    sees = {"registrar": True, "provider": True, "requester": True, "regulator": True}
    for caller in CALLERS:
        r = client.get(path, headers=world.auth(caller))
        assert r.status_code == 200, r.text
        listed = {item["id"] for item in r.json()}
        assert (wanted in listed) is sees.get(caller, False), f"{path} as {caller}: {listed}"


def test_suspended_party_is_refused_on_every_authenticated_route(env: tuple[TestClient, World]) -> None:
    client, world = env
    boot = world.auth("registrar")
    created = client.post(
        "/v1/parties", json={"kind": "department", "name": "停用单位", "uscc": make_uscc(4999)}, headers=boot
    )
    assert created.status_code == 201, created.text
    token, party_id = created.json()["token"], created.json()["id"]
    r = client.post(f"/v1/parties/{party_id}/suspend", json={"reason": "数据泄露调查"}, headers=boot)
    assert r.status_code == 200, r.text
    try:
        for (method, path), row in sorted(MATRIX.items()):
            # the console's suspended sessions: tests/integration/test_console.py
            if row in (PUBLIC, SUBJECT) or isinstance(row, Console):
                continue
            r = call(client, world, method, path, {"Authorization": f"Bearer {token}"})
            assert r.status_code == 403 and _error(r)["code"] == "party_suspended", (
                f"{method} {path}: {r.text}"
            )
    finally:
        assert client.post(f"/v1/parties/{party_id}/reinstate", headers=boot).status_code == 200
