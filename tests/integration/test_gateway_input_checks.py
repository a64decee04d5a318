"""The gateway's input checks, through the real app, chain and databases: a malformed row filter is
the caller's input error (422 ``invalid_row_filter``, not logged), a well-formed one that reaches
past the grant a denial (403 ``out_of_scope``, logged); a parameter the grant's mode does not read is
refused (422 ``parameter_not_applicable``) rather than dropped; under a grant, ``purpose`` must be
the grant's (403 ``purpose_not_granted``). Each case asserts the status and the exact code."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from ledger.runtime import Ledger
from tests.integration.test_gateway import denied, entry, env, grant, write_sqlite  # noqa: F401 - the fixture

RAW_FIELDS = ["id_number", "name", "district", "insured", "monthly_base"]


def _log_size(e: dict[str, Any]) -> int:
    ledger: Ledger = e["ledger"]
    return ledger.log.log.size()


def refused(e: dict[str, Any], r: Any, status: int, code: str, *fragments: str) -> dict[str, Any]:
    """An input error: the exact status and code, a message naming the problem, and no event."""
    assert r.status_code == status, r.text
    error: dict[str, Any] = r.json()["error"]
    assert error["code"] == code, error
    for fragment in fragments:
        assert fragment in error["message"], error["message"]
    assert "access_event" not in error and "X-Access-Event" not in r.headers, error
    return error


def _sqlite_source(e: dict[str, Any]) -> None:
    """Register the rows as a SQLite table: the filter is bound into SQL there, not evaluated in Python."""
    c: TestClient = e["client"]
    path = e["settings"].data_dir / "sources" / "checks.sqlite"
    write_sqlite(path, e["rows"])
    r = c.put(
        f"/v1/resources/{e['GY-RS-001']}/source",
        json={"kind": "sql", "location": f"sqlite:///{path}", "table": "insured"},
        headers=e["renshe"],
    )
    assert r.status_code == 200, r.text


# The query-string form: (filter text, fragment of the message).
MALFORMED_TEXT = [
    ('{"monthly_base": {"gt": 1e999}}', "1e999 is beyond ±1.8e308"),
    ('{"monthly_base": {"lt": -1e999}}', "-1e999 is beyond ±1.8e308"),
    ('{"monthly_base": 1' + "0" * 400 + ".5}", "beyond ±1.8e308"),
    ('{"monthly_base": NaN}', "NaN is not JSON"),
    ('{"monthly_base": {"gt": -Infinity}}', "-Infinity is not JSON"),
    ("1" + "0" * 5000, "an integer of 5001 digits is outside ±(2**53 - 1)"),
    ('{"monthly_base": ' + "9" * 20 + "}", "an integer of 20 digits is outside ±(2**53 - 1)"),
    ('{"monthly_base": 9007199254740993}', "an integer of 16 digits is outside ±(2**53 - 1)"),
    ("null", "must be a JSON object, got null"),
    ('["district"]', "must be a JSON object, got an array"),
    ('"district"', "must be a JSON object, got a string"),
    ("", "not valid JSON: Expecting value at character 0"),
    ('{"district": ', "not valid JSON: Expecting value at character 13"),
    ("{district: 1}", "not valid JSON"),
    ('{"district": "\\u0000"}', "field 'district' operator 'eq': value contains U+0000 (NUL) at position 0"),
    ('{"district": {"in": ["云岩区", "a\\u0000"]}}', "operator 'in': value contains U+0000 (NUL)"),
    ('{"district": {"prefix": "\\u0000"}}', "operator 'prefix': value contains U+0000 (NUL)"),
    ('{"dis\\u0000trict": 1}', "field name 'dis\\x00trict' contains U+0000 (NUL) at position 3"),
    ('{"district": "\\ud800"}', "contains a lone surrogate U+D800 at position 0"),
    ('{"district": {"between": [1, 2]}}', "unknown operator 'between'"),
    ('{"district": {}}', "non-empty object"),
    ('{"district": ["云岩区"]}', 'write {"in": [...]}'),
    ('{"monthly_base": {"gt": true}}', "operator 'gt' needs a string or a number"),
    ('{"district": "云岩区", "district": "南明区"}', "'district' named twice in one object"),
    ("[" * 3000 + "]" * 3000, "nested deeper than 8 levels"),
]


@pytest.mark.parametrize("source", ["csv", "sqlite"])
def test_a_malformed_filter_is_an_input_error_not_a_denial(env: dict[str, Any], source: str) -> None:  # noqa: F811
    """QA: ``filter={"v":{"gt":1e999}}`` was a 403 ``out_of_scope`` logged as a denial (feeding
    ``denied_burst``); ``{"v":"\\u0000"}`` got through the NUL guard (which only sees a literal NUL)
    and was delivered; a 5000-digit number was "filter must be a JSON object"."""
    c = env["client"]
    if source == "sqlite":
        _sqlite_source(env)
    gid = grant(env)
    rid = env["GY-RS-001"]
    before = _log_size(env)
    for text, fragment in MALFORMED_TEXT:
        r = c.get(f"/v1/data/{rid}", params={"grant": gid, "filter": text}, headers=env["minzheng"])
        refused(env, r, 422, "invalid_row_filter", "row filter: ", fragment)
    assert _log_size(env) == before  # nothing logged: no denial, no access
    # The same grant still serves a well-formed filter.
    r = c.get(
        f"/v1/data/{rid}", params={"grant": gid, "filter": '{"district": "花溪区"}'}, headers=env["minzheng"]
    )
    assert r.status_code == 200 and {row["district"] for row in r.json()["rows"]} == {"花溪区"}, r.text


# The POST form: (raw JSON of the filter, fragment). Python's JSON reader turns 1e999 into infinity
# and accepts NaN; the gateway refuses both rather than compare against them.
MALFORMED_BODY = [
    ('{"monthly_base": {"gt": 1e999}}', "value inf is not a finite number"),
    ('{"monthly_base": NaN}', "value nan is not a finite number"),
    ('{"monthly_base": {"in": [1, ' + "9" * 30 + "]}}", "an integer of 30 digits is outside ±(2**53 - 1)"),
    ('{"district": "\\ud800"}', "contains a lone surrogate U+D800"),
    ('{"district": {"lt": {"x": 1}}}', "not a nested object"),
    ('{"district": {"eq": 1, "like": "%"}}', "unknown operator 'like'"),
    ('{"": 1}', "field name must be a string of 1-64 characters"),
]


def test_a_malformed_filter_in_the_post_form(env: dict[str, Any]) -> None:  # noqa: F811
    c = env["client"]
    _sqlite_source(env)
    gid = grant(env)
    rid = env["GY-RS-001"]
    before = _log_size(env)
    for raw, fragment in MALFORMED_BODY:
        body = f'{{"grant": "{gid}", "filter": {raw}}}'.encode()
        r = c.post(
            f"/v1/data/{rid}",
            content=body,
            headers={**env["minzheng"], "Content-Type": "application/json"},
        )
        refused(env, r, 422, "invalid_row_filter", fragment)
    assert _log_size(env) == before


def test_malformed_filter_is_refused_before_the_grant_is_read(env: dict[str, Any]) -> None:  # noqa: F811
    """Syntax first, whoever asks: a malformed filter is 422 even with no grant, an unknown one or a
    filter on a hidden field — it names nothing the caller could learn from, and is not logged."""
    c = env["client"]
    rid = env["GY-RS-001"]
    gid = grant(env, fields=["district"])
    before = _log_size(env)
    bad = '{"salary": {"gt": 1e999}}'
    for params in ({}, {"grant": "0x" + "ab" * 32}, {"grant": gid}):
        r = c.get(f"/v1/data/{rid}", params={**params, "filter": bad}, headers=env["minzheng"])
        refused(env, r, 422, "invalid_row_filter", "1e999")
    assert _log_size(env) == before


def test_a_wellformed_filter_past_the_grant_is_still_a_logged_denial(env: dict[str, Any]) -> None:  # noqa: F811
    c = env["client"]
    rid = env["GY-RS-001"]
    gid = grant(env, fields=["district", "name"])
    for text, named in (
        ('{"insured": true}', "insured"),  # a catalog field the grant does not include
        ('{"salary": {"gt": 9000}}', "salary"),  # not in the catalog at all
        ('{"district": "云岩区", "monthly_base": {"gt": 1}}', "monthly_base"),
    ):
        r = c.get(f"/v1/data/{rid}", params={"grant": gid, "filter": text}, headers=env["minzheng"])
        logged = denied(env, r, "out_of_scope")
        assert logged["grant"] == gid
        assert f"row filter on field(s) outside the grant: {named}" == r.json()["error"]["message"]
    r = c.post(
        f"/v1/data/{rid}",
        json={"grant": gid, "filter": {"monthly_base": {"gte": 3000}}},
        headers=env["minzheng"],
    )
    denied(env, r, "out_of_scope")


def test_nul_and_surrogates_never_reach_a_sql_source(env: dict[str, Any]) -> None:  # noqa: F811
    """The filter's values are bound into the source's SQL: U+0000 and lone surrogates are refused
    in parsing (PostgreSQL text cannot hold NUL; no driver can bind a lone surrogate), while other
    control characters are ordinary text that simply matches nothing."""
    c = env["client"]
    _sqlite_source(env)
    gid = grant(env)
    rid = env["GY-RS-001"]
    for text in ('{"district": "\\u0000"}', '{"name": {"prefix": "\\udfff"}}'):
        r = c.get(f"/v1/data/{rid}", params={"grant": gid, "filter": text}, headers=env["minzheng"])
        refused(env, r, 422, "invalid_row_filter")
    r = c.get(
        f"/v1/data/{rid}",
        params={"grant": gid, "filter": '{"district": "\\u0001\\u007f"}'},
        headers=env["minzheng"],
    )
    assert r.status_code == 200 and r.json()["rows"] == [], r.text


# -- parameters the grant's mode does not read --------------------------------------------------------

NOT_FOR_ROWS = [
    ({"subjects": "abc"}, "subjects"),
    ({"group_by": "district"}, "group_by"),
    ({"metrics": "sum:monthly_base"}, "metrics"),
    ({"metrics": "sum(v)"}, "metrics"),
    ({"key": "id_number"}, "key"),
    ({"subjects": "abc", "key": "id_number"}, "subjects, key"),
]


@pytest.mark.parametrize("mode", ["raw", "masked"])
def test_row_modes_refuse_the_other_modes_parameters(env: dict[str, Any], mode: str) -> None:  # noqa: F811
    """QA: on a raw grant ``subjects=abc`` returned every row — the caller believed it had filtered."""
    c = env["client"]
    rid = env["GY-RS-001"]
    gid = grant(env, mode=mode)
    before = _log_size(env)
    for params, named in NOT_FOR_ROWS:
        r = c.get(f"/v1/data/{rid}", params={"grant": gid, **params}, headers=env["minzheng"])
        verb = "do" if "," in named else "does"
        error = refused(
            env,
            r,
            422,
            "parameter_not_applicable",
            f"{named} {verb} not apply to a {mode} access (the grant's mode is {mode})",
            f"a {mode} access takes fields, filter, limit, format",
        )
        assert error["message"].startswith(named), error
    body = {"grant": gid, "subjects": ["520102199001011234"], "group_by": ["district"]}
    r = c.post(f"/v1/data/{rid}", json=body, headers=env["minzheng"])
    refused(env, r, 422, "parameter_not_applicable", "group_by, subjects do not apply")
    assert _log_size(env) == before
    # What the mode reads still works, and an empty list is no parameter.
    r = c.post(
        f"/v1/data/{rid}",
        json={
            "grant": gid,
            "fields": ["district"],
            "limit": 2,
            "filter": {"district": "南明区"},
            "subjects": [],
        },
        headers=env["minzheng"],
    )
    assert r.status_code == 200 and r.json()["rows"] == [{"district": "南明区"}] * 2, r.text


def test_aggregate_refuses_row_and_verify_parameters(env: dict[str, Any]) -> None:  # noqa: F811
    c = env["client"]
    rid = env["GY-RS-001"]
    gid = grant(env, mode="aggregate", fields=["district", "monthly_base", "id_number"])
    before = _log_size(env)
    for params, named in (
        ({"fields": "district"}, "fields"),
        ({"limit": 5}, "limit"),
        ({"subjects": "abc"}, "subjects"),
        ({"key": "id_number"}, "key"),
    ):
        r = c.get(
            f"/v1/data/{rid}",
            params={"grant": gid, "group_by": "district", **params},
            headers=env["minzheng"],
        )
        refused(
            env,
            r,
            422,
            "parameter_not_applicable",
            f"{named} does not apply to an aggregate access (the grant's mode is aggregate)",
            "takes filter, group_by, metrics",
        )
    r = c.get(
        f"/v1/data/{rid}",
        params={"grant": gid, "group_by": "district", "format": "ndjson"},
        headers=env["minzheng"],
    )
    refused(env, r, 422, "stream_not_supported", "an aggregate access (the grant's mode is aggregate)")
    assert _log_size(env) == before
    # metrics defaults to count, in this mode only; a filter applies.
    r = c.get(
        f"/v1/data/{rid}",
        params={"grant": gid, "group_by": "district", "filter": '{"monthly_base": {"gte": 3000}}'},
        headers=env["minzheng"],
    )
    assert r.status_code == 200 and r.json()["metrics"] == ["count"], r.text


def test_verify_refuses_row_and_aggregate_parameters(env: dict[str, Any]) -> None:  # noqa: F811
    c = env["client"]
    rid = env["GY-RS-001"]
    gid = grant(env, mode="verify", fields=["id_number", "district"])
    someone = env["rows"][1]["id_number"]
    before = _log_size(env)
    for params, named in (
        ({"fields": "id_number"}, "fields"),
        ({"limit": 5}, "limit"),
        ({"group_by": "district"}, "group_by"),
        ({"metrics": "count"}, "metrics"),
    ):
        r = c.get(
            f"/v1/data/{rid}",
            params={"grant": gid, "subjects": someone, "key": "id_number", **params},
            headers=env["minzheng"],
        )
        refused(
            env,
            r,
            422,
            "parameter_not_applicable",
            f"{named} does not apply to a verify access (the grant's mode is verify)",
            "takes filter, subjects, key",
        )
    r = c.post(
        f"/v1/data/{rid}",
        json={"grant": gid, "subjects": [someone], "key": "id_number", "format": "ndjson"},
        headers=env["minzheng"],
    )
    refused(env, r, 422, "stream_not_supported")
    assert _log_size(env) == before
    r = c.post(
        f"/v1/data/{rid}",
        json={"grant": gid, "subjects": [someone], "key": "id_number", "filter": {"district": "云岩区"}},
        headers=env["minzheng"],
    )
    assert r.status_code == 200 and r.json()["answers"] == [{"subject": someone, "match": True}], r.text


def test_open_resource_refuses_the_other_modes_parameters(env: dict[str, Any]) -> None:  # noqa: F811
    c = env["client"]
    r = c.get(
        f"/v1/data/{env['GY-RS-OPEN']}",
        params={"purpose": "academic_research", "subjects": "abc"},
        headers=env["qiye"],
    )
    refused(
        env,
        r,
        422,
        "parameter_not_applicable",
        "subjects does not apply to a masked access (an open resource is delivered masked)",
    )


# -- purpose under a grant ----------------------------------------------------------------------------


def test_purpose_under_a_grant_must_be_the_grants(env: dict[str, Any]) -> None:  # noqa: F811
    """A grant carries its purpose (social_assistance here). Naming it again is harmless; naming
    another code is a use the grant does not cover — refused and logged, with the purpose stated;
    a code outside the vocabulary is an input error."""
    c = env["client"]
    rid = env["GY-RS-001"]
    gid = grant(env)
    r = c.get(
        f"/v1/data/{rid}", params={"grant": gid, "purpose": "social_assistance"}, headers=env["minzheng"]
    )
    assert r.status_code == 200 and r.json()["purpose"] == "social_assistance", r.text
    r = c.get(
        f"/v1/data/{rid}", params={"grant": gid, "purpose": "academic_research"}, headers=env["minzheng"]
    )
    logged = denied(env, r, "purpose_not_granted")
    assert (
        "this grant is for purpose 'social_assistance', not 'academic_research'"
        in r.json()["error"]["message"]
    )
    assert logged["purpose"] == "academic_research" and logged["grant"] == gid and logged["mode"] == "raw"
    before = _log_size(env)
    r = c.get(f"/v1/data/{rid}", params={"grant": gid, "purpose": "nope"}, headers=env["minzheng"])
    refused(env, r, 422, "unknown_purpose", "'nope'")
    r = c.post(f"/v1/data/{rid}", json={"grant": gid, "purpose": "nope"}, headers=env["minzheng"])
    refused(env, r, 422, "unknown_purpose")
    assert _log_size(env) == before


def test_post_form_does_not_read_the_query(env: dict[str, Any]) -> None:  # noqa: F811
    """``POST /v1/data/{id}?grant=…`` with a JSON body: the query was dropped, so the access was
    judged without a grant — a logged ``no_grant`` denial for a caller who holds one."""
    c = env["client"]
    gid = grant(env)
    rid = env["GY-RS-001"]
    before = _log_size(env)
    r = c.post(f"/v1/data/{rid}", params={"grant": gid, "limit": 2}, json={}, headers=env["minzheng"])
    refused(
        env,
        r,
        422,
        "query_not_read",
        "POST /v1/data takes its parameters in the JSON body only, not in the query (grant, limit)",
    )
    assert _log_size(env) == before
    ok = c.post(f"/v1/data/{rid}", json={"grant": gid, "limit": 2}, headers=env["minzheng"])
    assert ok.status_code == 200, ok.text
