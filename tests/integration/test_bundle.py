"""Proof bundles: served once anchored (409 before), checked with nothing but a chain endpoint,
and every corruption refused with the exact reason."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ledger.errors import VerificationError
from ledger.identity.uscc import make_uscc
from ledger.log.bundle import verify_bundle
from ledger.runtime import Ledger
from ledger.settings import Settings
from tests.support.catalog import publish
from tests.support.evm_node import EvmNode, evm_node  # noqa: F401
from tests.support.live import serve

BOOT = {"Authorization": "Bearer st_bootstrap-registrar-token"}


def _event(i: int, accessor: str, provider: str | None = None) -> dict[str, Any]:
    event = {
        "event_id": f"gw-{i}",
        "accessor": accessor,
        "resource": "GY-MZ-001",
        "purpose": "social_assistance",
        "fields": ["name", "id_number"],
        "mode": "masked",
        "record_count": 12,
        "time": "2026-11-20T08:00:00Z",
        "gateway": "exchange-platform-1",
        "query_hash": "0x" + "ab" * 32,
        "result_hash": "0x" + "cd" * 32,
    }
    if provider:
        event["provider"] = provider
    return event


def _party(client: TestClient, kind: str, seq: int) -> dict[str, Any]:
    r = client.post(
        "/v1/parties", json={"kind": kind, "name": f"{kind}-{seq}", "uscc": make_uscc(seq)}, headers=BOOT
    )
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def _auth(party: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {party['token']}"}


@pytest.fixture
def world(tmp_path: Path) -> Iterator[dict[str, Any]]:
    settings = Settings(
        data_dir=tmp_path / "data", bootstrap_token=BOOT["Authorization"][7:], anchor_loop=False
    )
    app = create_app(settings)
    with TestClient(app) as client, serve(app) as url:
        op, dept, other, provider = (
            _party(client, "operator", 10),
            _party(client, "department", 11),
            _party(client, "department", 12),
            _party(client, "department", 13),
        )
        publish(client, _auth(provider), "GY-MZ-001")
        publish(client, _auth(provider), "GY-MZ-004", level=4)
        r = client.post(
            "/v1/access-events",
            json=[_event(i, dept["id"], provider["id"]) for i in range(6)],
            headers=_auth(op),
        )
        assert r.status_code == 201, r.text
        yield {
            "client": client,
            "app": app,
            "rpc": f"{url}/rpc",
            "op": op,
            "dept": dept,
            "other": other,
            "provider": provider,
        }


def _anchor(world: dict[str, Any]) -> None:
    ledger: Ledger = world["app"].state.ledger
    assert ledger.anchorer.anchor_once() is not None


def _bundle(world: dict[str, Any], index: int, who: str = "dept") -> dict[str, Any]:
    r = world["client"].get(f"/v1/proofs/access/{index}", headers=_auth(world[who]))
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_not_anchored_yet_is_409_with_retry_hint(world: dict[str, Any]) -> None:
    r = world["client"].get("/v1/proofs/access/2", headers=_auth(world["dept"]))
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "not_anchored" and r.json()["error"]["retry_after"] >= 1
    assert int(r.headers["retry-after"]) >= 1


def test_bundle_verifies_against_the_chain_endpoint_only(world: dict[str, Any], tmp_path: Path) -> None:
    _anchor(world)
    bundle = _bundle(world, 4)
    assert bundle["version"] == 1 and bundle["leaf_index"] == 4 and bundle["tree_size"] == 6
    assert bundle["entry"]["event_id"] == "gw-4" and bundle["entry"]["accessor"] == world["dept"]["id"]
    assert bundle["anchor"]["contract"] == world["app"].state.ledger.contracts["Anchor"].address
    verify_bundle(bundle, world["rpc"])
    # the same through the CLI, as a third party would run it
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-m", "api.cli", "verify-bundle", str(path), "--rpc", world["rpc"]],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
    )
    assert out.returncode == 0, out.stdout + out.stderr
    # an access recorded without a grant: the output says authorization was not checked
    assert out.stdout.startswith(
        "OK (inclusion and anchor verified; no grant or contract in the bundle: authorization not checked): "
        "log entry 4 is included in the root anchored at tree size 6 on chain "
    ), out.stdout


def test_who_may_fetch_a_bundle(world: dict[str, Any]) -> None:
    _anchor(world)
    for who in ("dept", "provider"):
        assert _bundle(world, 1, who)["leaf_index"] == 1
    r = world["client"].get("/v1/proofs/access/1", headers=_auth(world["other"]))
    assert r.status_code == 404 and r.json()["error"]["code"] == "entry_not_found"
    assert world["client"].get("/v1/proofs/access/1", headers=BOOT).status_code == 200  # registrar
    r = world["client"].get("/v1/proofs/access/999", headers=BOOT)
    assert r.status_code == 404 and r.json()["error"]["code"] == "entry_not_found"


def _expect(bundle: Any, rpc: str, code: str) -> None:
    with pytest.raises(VerificationError) as info:
        verify_bundle(bundle, rpc)
    assert info.value.code == code, info.value.message


def test_corrupted_bundles_are_refused_with_the_reason(world: dict[str, Any]) -> None:
    _anchor(world)
    # anchor a second time so that size 6 is anchored but sizes 7..8 only as 9
    r = world["client"].post(
        "/v1/access-events",
        json=[_event(i, world["dept"]["id"]) for i in range(6, 9)],
        headers=_auth(world["op"]),
    )
    assert r.status_code == 201
    _anchor(world)
    good = _bundle(world, 3)
    rpc = world["rpc"]
    verify_bundle(good, rpc)

    edited = copy.deepcopy(good)
    edited["entry"]["purpose"] = "law_enforcement"
    _expect(edited, rpc, "root_mismatch")
    flipped = copy.deepcopy(good)
    flipped["inclusion_proof"][0] = (
        "0x" + ("0" if good["inclusion_proof"][0][2] != "0" else "1") + good["inclusion_proof"][0][3:]
    )
    _expect(flipped, rpc, "root_mismatch")
    moved = copy.deepcopy(good)
    moved["leaf_index"] = 2
    _expect(moved, rpc, "root_mismatch")
    truncated = copy.deepcopy(good)
    truncated["inclusion_proof"] = truncated["inclusion_proof"][:-1]
    _expect(truncated, rpc, "wrong_proof_length")
    # a self-consistent proof against a root that was never anchored (tree size 8)
    ledger: Ledger = world["app"].state.ledger
    unanchored = copy.deepcopy(good)
    unanchored["tree_size"] = 8
    unanchored["inclusion_proof"] = ["0x" + h.hex() for h in ledger.log.log.inclusion_proof(3, 8)]
    unanchored["root"] = "0x" + ledger.log.log.root(8).hex()
    _expect(unanchored, rpc, "root_not_anchored")
    other_chain = copy.deepcopy(good)
    other_chain["anchor"]["chain_id"] = 1
    _expect(other_chain, rpc, "chain_id_mismatch")
    for broken in (
        {},
        {**good, "version": 2},
        {**good, "root": "0x12"},
        {**good, "leaf_index": -1},
        {**good, "entry": "not an object"},
        {**good, "inclusion_proof": "0x00"},
    ):
        _expect(broken, rpc, "malformed_bundle")


@pytest.mark.external_chain
def test_bundle_checked_on_external_node_after_server_stopped(evm_node: EvmNode, tmp_path: Path) -> None:  # noqa: F811
    settings = Settings(
        data_dir=tmp_path / "d", chain=evm_node.url, bootstrap_token="st_ext-bundle", anchor_loop=False
    )
    with TestClient(create_app(settings)) as client:
        boot = {"Authorization": "Bearer st_ext-bundle"}
        op = client.post(
            "/v1/parties", json={"kind": "operator", "name": "op", "uscc": make_uscc(81)}, headers=boot
        ).json()
        dept = client.post(
            "/v1/parties", json={"kind": "department", "name": "d", "uscc": make_uscc(82)}, headers=boot
        ).json()
        publish(client, _auth(dept), "GY-MZ-001")
        r = client.post(
            "/v1/access-events", json=[_event(i, dept["id"]) for i in range(3)], headers=_auth(op)
        )
        assert r.status_code == 201
        client.app.state.ledger.anchorer.anchor_once()  # type: ignore[attr-defined]
        bundle = client.get("/v1/proofs/access/2", headers=_auth(dept)).json()
    # sharetrail is stopped; only the chain node remains
    with pytest.raises(httpx.HTTPError):
        httpx.get("http://testserver/healthz")
    verify_bundle(bundle, evm_node.url)
    edited = copy.deepcopy(bundle)
    edited["entry"]["record_count"] = 13
    _expect(edited, evm_node.url, "root_mismatch")


def test_level_4_access_is_also_recorded_in_its_own_transaction(world: dict[str, Any]) -> None:
    ledger: Ledger = world["app"].state.ledger
    anchor = ledger.contracts["Anchor"]
    high = {**_event(100, world["dept"]["id"]), "resource": "GY-MZ-004", "level": 4}
    low = {**_event(101, world["dept"]["id"]), "level": 2}
    r = world["client"].post("/v1/access-events", json=[high, low], headers=_auth(world["op"]))
    assert r.status_code == 201
    high_index, low_index = (x["index"] for x in r.json())
    # on chain as soon as the request returned, before any batch anchor
    assert ledger.log.log.latest_checkpoint() is None
    recorded = bytes(ledger.chain.call(anchor.functions.leafAt(high_index)))
    assert recorded == ledger.log.log.leaf_hash(high_index)
    assert bytes(ledger.chain.call(anchor.functions.leafAt(low_index))) == bytes(32)
    _anchor(world)
    bundle = _bundle(world, high_index)
    assert bundle["leaf_record"]["tx_hash"].startswith("0x") and bundle["leaf_record"]["block_number"] > 0
    verify_bundle(bundle, world["rpc"])
    plain = _bundle(world, low_index)
    assert plain["leaf_record"] is None
    forged = {**plain, "leaf_record": {"tx_hash": bundle["leaf_record"]["tx_hash"], "block_number": 1}}
    _expect(forged, world["rpc"], "leaf_record_mismatch")


def test_a_wrong_anchor_contract_is_named_as_such(world: dict[str, Any]) -> None:
    """QA: a wrong ``anchor.contract`` was reported as ``chain_unreachable``; the chain answered."""
    _anchor(world)
    good = _bundle(world, 2)
    ledger: Ledger = world["app"].state.ledger
    for address in (ledger.contracts["ShareLedger"].address, "0x" + "12" * 20):
        moved = copy.deepcopy(good)
        moved["anchor"]["contract"] = address
        _expect(moved, world["rpc"], "anchor_contract_mismatch")
    _expect(good, "http://127.0.0.1:9/rpc", "chain_unreachable")  # nothing listens on port 9


def _share_grant_section(world: dict[str, Any], **changes: Any) -> dict[str, Any]:
    ledger: Ledger = world["app"].state.ledger
    signed = {
        "typed_data": {"domain": {}, "types": {}, "message": {}, "primaryType": "Request"},
        "signature": "0x00",
    }
    section = {
        "type": "share_grant",
        "grant_id": "0x" + "ab" * 32,
        "chain_id": ledger.chain.chain_id,
        "contract": ledger.contracts["ShareLedger"].address,
        "scope": {},
        "request": signed,
        "decision": None,
    }
    section.update(changes)
    return section


def test_malformed_grant_sections_are_malformed_bundles(world: dict[str, Any], tmp_path: Path) -> None:
    """QA: ``grant.request.typed_data`` set to 5 crashed the CLI with an AttributeError traceback. The
    grant section's shape is checked before anything is read from it, whatever the entry."""
    _anchor(world)
    good = _bundle(world, 1)
    document: dict[str, Any] = {"domain": {}, "types": {}, "message": {}, "primaryType": "Request"}
    signed: dict[str, Any] = {"typed_data": document, "signature": "0x00"}
    sections: list[Any] = [
        [],
        "share_grant",
        {"type": "share_grant"},
        _share_grant_section(world, type="licence"),
        _share_grant_section(world, chain_id="31337"),
        _share_grant_section(world, contract="0x12"),
        _share_grant_section(world, grant_id="0x12"),
        _share_grant_section(world, scope=[]),
        _share_grant_section(world, request=None),
        _share_grant_section(world, request={**signed, "typed_data": 5}),
        _share_grant_section(world, request={**signed, "typed_data": {**document, "domain": []}}),
        _share_grant_section(world, request={**signed, "signature": 7}),
        _share_grant_section(world, decision={"typed_data": "x"}),
        {**_share_grant_section(world), "type": "open_contract", "contract_id": "0x" + "ab" * 32},
    ]
    for section in sections:
        _expect({**good, "grant": section}, world["rpc"], "malformed_bundle")
    deep: Any = {}
    for _ in range(80):
        deep = {"x": deep}
    _expect({**good, "grant": deep}, world["rpc"], "malformed_bundle")
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps({**good, "grant": sections[9]}), encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-m", "api.cli", "verify-bundle", str(path), "--rpc", world["rpc"]],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1 and out.stdout.startswith("FAILED malformed_bundle: grant.request.typed_data")
    assert "Traceback" not in out.stderr, out.stderr


def test_trusted_contracts_pin_what_a_bundle_may_name(world: dict[str, Any], tmp_path: Path) -> None:
    """A bundle names its own contracts; a verifier that knows the log's real ones pins them
    (``--trust``), so a bundle pointing at look-alike contracts on the same chain is refused before
    anything is read from them — by the library, the CLI and the standalone script alike."""
    _anchor(world)
    bundle = _bundle(world, 4)
    anchor = bundle["anchor"]["contract"]
    verify_bundle(bundle, world["rpc"], trusted=[anchor.lower()])
    elsewhere = "0x" + "12" * 20
    with pytest.raises(VerificationError) as info:
        verify_bundle(bundle, world["rpc"], trusted=[elsewhere])
    assert info.value.code == "untrusted_contract"
    assert info.value.message == f"anchor.contract {anchor} is not a contract you trust (--trust)"
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    script = Path(__file__).resolve().parents[2] / "docs" / "verify_bundle_standalone.py"
    for command in (
        [sys.executable, "-m", "api.cli", "verify-bundle", str(path), "--rpc", world["rpc"]],
        [sys.executable, str(script), str(path), world["rpc"]],
    ):
        ok = subprocess.run([*command, "--trust", anchor], capture_output=True, text=True, timeout=120)
        assert ok.returncode == 0 and ok.stdout.startswith("OK ("), ok.stdout + ok.stderr
        bad = subprocess.run([*command, "--trust", elsewhere], capture_output=True, text=True, timeout=120)
        assert bad.returncode == 1, bad.stdout + bad.stderr
        assert bad.stdout.startswith("FAILED untrusted_contract: anchor.contract "), bad.stdout
