"""``sharetrail verify-bundle`` and docs/verify_bundle_standalone.py — the third party's verifier that
uses only web3.py and hashlib (run with ``python -I``: nothing of the project importable) — give the
same verdict, with the same code, on one table of genuine and bad bundles; the library's
``verify_bundle`` raises that same code.

The bundles are real: taken from a sharetrail running on the embedded chain (``tests/support/world``
plus the accesses below), served over ``/rpc``. Among them, the QA findings this table pins down:
an access logged after its grant was revoked on chain (``grant_revoked``), an accessor that is not
the grantee (``accessor_mismatch``, which the standalone script used to accept), a genuine
declaration entry under an open contract (which it used to refuse), malformed grant sections
(``malformed_bundle``, not a traceback), and a wrong ``anchor.contract`` (``anchor_contract_mismatch``,
not ``chain_unreachable``)."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.cli import app as cli_app
from ledger.errors import VerificationError
from ledger.log.bundle import verify_bundle
from ledger.runtime import Ledger
from ledger.settings import Settings
from tests.support.live import serve
from tests.support.world import BOOTSTRAP_TOKEN, NOW, World, build_world

SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "verify_bundle_standalone.py"
NOT_CHECKED = "no grant or contract in the bundle: authorization not checked"


@dataclass
class Env:
    rpc: str
    bundles: dict[str, dict[str, Any]]
    addresses: dict[str, str]


def _recorded(client: TestClient, world: World, event: dict[str, Any]) -> int:
    r = client.post("/v1/access-events", json=[event], headers=world.auth("operator"))
    assert r.status_code == 201, r.text
    return int(r.json()[0]["index"])


def _event(world: World, event_id: str, **fields: Any) -> dict[str, Any]:
    """An access reported by an exchange platform under ``requester``'s open-resource grant."""
    return {
        "event_id": event_id,
        "accessor": world.ids["requester"],
        "provider": world.ids["provider"],
        "resource": world.open_resource,
        "grant": world.grant,
        "purpose": "employment_service",
        "fields": ["district"],
        "mode": "masked",
        "record_count": 2,
        "time": datetime.now(UTC).isoformat(),
        "gateway": "exchange-platform-1",
        **fields,
    }


def _kind_index(ledger: Ledger, kind: str) -> int:
    for index in range(ledger.log.log.size()):
        if json.loads(ledger.log.log.entry(index).entry).get("kind") == kind:
            return index
    raise AssertionError(f"no {kind} entry in the log")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("standalone")
    settings = Settings(data_dir=tmp / "data", bootstrap_token=BOOTSTRAP_TOKEN, anchor_loop=False)
    app = create_app(settings)
    with TestClient(app) as client, serve(app) as url:
        ledger: Ledger = app.state.ledger
        world = build_world(client, ledger)
        c, boot = client, world.auth("registrar")
        # A genuine access through the gateway under a grant that is revoked afterwards.
        r = c.get(
            f"/v1/data/{world.open_resource}",
            params={"grant": world.revocable_grant, "limit": 2},
            headers=world.auth("requester"),
        )
        assert r.status_code == 200, r.text
        before_revocation = int(r.headers["X-Access-Event"])
        r = c.post(
            f"/v1/grants/{world.revocable_grant}/revoke", json={"reason": "履职需要已消失"}, headers=boot
        )
        assert r.status_code == 200, r.text
        revoked_block = ledger.chain.latest_block()
        # The platform then reports accesses under the revoked grant: one checked on chain at the
        # latest block (its chain_time), one with a time (wall clock) after the revocation block's.
        after_chain_time = _recorded(
            c,
            world,
            _event(world, "qa:revoked-1", grant=world.revocable_grant, chain_time=revoked_block["timestamp"]),
        )
        later = datetime.fromtimestamp(
            max(revoked_block["timestamp"], datetime.now(UTC).timestamp()) + 1, UTC
        )
        assert later < datetime.now(UTC) + timedelta(minutes=4)  # within the API's clock skew
        after_time = _recorded(
            c, world, _event(world, "qa:revoked-2", grant=world.revocable_grant, time=later.isoformat())
        )
        not_grantee = _recorded(c, world, _event(world, "qa:outsider", accessor=world.ids["outsider"]))
        too_early = _recorded(
            c, world, _event(world, "qa:too-early", time=(NOW - timedelta(hours=1)).isoformat())
        )
        # An access under the contract while it is suspended, and one after it was terminated.
        contract_event = {
            "accessor": world.ids["enterprise"],
            "provider": world.ids["provider"],
            "resource": world.contract_resource,
            "contract": world.contract,
            "purpose": "credit_assessment",
            "fields": ["district"],
            "gateway": "exchange-platform-1",
        }
        outcomes: dict[str, int] = {}
        for action in ("suspend", "terminate"):
            r = c.post(f"/v1/open-contracts/{world.contract}/{action}", json={"reason": "核查"}, headers=boot)
            assert r.status_code == 200, r.text
            outcomes[action] = _recorded(
                c,
                world,
                {
                    **contract_event,
                    "event_id": f"qa:contract-{action}",
                    "time": datetime.now(UTC).isoformat(),
                    "chain_time": ledger.chain.latest_block()["timestamp"],
                },
            )
        assert ledger.anchorer.anchor_once() is not None
        indices = {
            "no_grant": world.access_index,
            "grant": before_revocation,
            "contract": world.contract_access,
            "declaration": _kind_index(ledger, "declaration"),
            "revoked_chain_time": after_chain_time,
            "revoked_time": after_time,
            "not_grantee": not_grantee,
            "too_early": too_early,
            "suspended": outcomes["suspend"],
            "terminated": outcomes["terminate"],
        }
        bundles = {}
        for name, index in indices.items():
            r = c.get(f"/v1/proofs/access/{index}", headers=boot)
            assert r.status_code == 200, r.text
            bundles[name] = r.json()
        assert bundles["no_grant"]["grant"] is None
        assert bundles["declaration"]["entry"]["kind"] == "declaration"
        assert bundles["declaration"]["grant"]["type"] == "open_contract"
        addresses = {name: str(contract.address) for name, contract in ledger.contracts.items()}
        yield Env(rpc=f"{url}/rpc", bundles=bundles, addresses=addresses)


Mutation = Callable[[dict[str, Any], Env], None]


def _set(path: str, value: Any) -> Mutation:
    *parents, last = path.split(".")

    def mutate(bundle: dict[str, Any], _: Env) -> None:
        target = bundle
        for key in parents:
            target = target[key] if not isinstance(target, list) else target[int(key)]
        target[last] = value

    return mutate


def _anchor_at(name: str) -> Mutation:
    def mutate(bundle: dict[str, Any], env: Env) -> None:
        bundle["anchor"]["contract"] = env.addresses[name]

    return mutate


def _grant_at(name: str) -> Mutation:
    def mutate(bundle: dict[str, Any], env: Env) -> None:
        bundle["grant"]["contract"] = env.addresses[name]

    return mutate


def _swap_signature(bundle: dict[str, Any], _: Env) -> None:
    bundle["grant"]["request"]["signature"] = "0x" + "11" * 65


def _no_evidence(bundle: dict[str, Any], _: Env) -> None:
    bundle["grant"] = None


def _widen_scope(bundle: dict[str, Any], _: Env) -> None:
    bundle["grant"]["scope"]["max_records"] = 10**6


# (case, genuine bundle, mutation or None, expected: "OK" or the failure code)
CASES: list[tuple[str, str, Mutation | None, str]] = [
    ("access without grant", "no_grant", None, "OK"),
    ("access under a grant, before its revocation", "grant", None, "OK"),
    ("access under an open contract", "contract", None, "OK"),
    ("declaration under an open contract", "declaration", None, "OK"),
    ("access logged after revocation (chain_time)", "revoked_chain_time", None, "grant_revoked"),
    ("access logged after revocation (time)", "revoked_time", None, "grant_revoked"),
    ("accessor is not the grantee", "not_grantee", None, "accessor_mismatch"),
    ("access before the grant's window", "too_early", None, "outside_window"),
    ("access while the contract is suspended", "suspended", None, "contract_suspended"),
    ("access after the contract was terminated", "terminated", None, "contract_terminated"),
    ("edited entry", "grant", _set("entry.purpose", "law_enforcement"), "root_mismatch"),
    ("edited root", "grant", _set("root", "0x" + "00" * 32), "root_mismatch"),
    ("leaf index past the tree", "grant", _set("leaf_index", 10**6), "index_out_of_range"),
    ("short proof", "grant", _set("inclusion_proof", []), "wrong_proof_length"),
    ("another chain id", "grant", _set("anchor.chain_id", 1), "chain_id_mismatch"),
    ("anchor.contract is ShareLedger", "grant", _anchor_at("ShareLedger"), "anchor_contract_mismatch"),
    (
        "anchor.contract holds no code",
        "grant",
        _set("anchor.contract", "0x" + "12" * 20),
        "anchor_contract_mismatch",
    ),
    ("anchor tx of another block", "grant", _set("anchor.block_number", 1), "anchor_tx_mismatch"),
    ("typed_data is a number", "grant", _set("grant.request.typed_data", 5), "malformed_bundle"),
    ("domain is a list", "grant", _set("grant.request.typed_data.domain", []), "malformed_bundle"),
    ("unknown grant type", "grant", _set("grant.type", "licence"), "malformed_bundle"),
    ("grant is a list", "no_grant", _set("grant", []), "malformed_bundle"),
    ("grant.contract is OpenContracts", "grant", _grant_at("OpenContracts"), "grant_contract_mismatch"),
    (
        "grant.contract holds no code",
        "grant",
        _set("grant.contract", "0x" + "12" * 20),
        "grant_contract_mismatch",
    ),
    ("widened scope", "grant", _widen_scope, "scope_mismatch"),
    ("request signed by nobody", "grant", _swap_signature, "forged_signature"),
    ("grant section dropped", "grant", _no_evidence, "authority_missing"),
    ("contract section dropped", "contract", _no_evidence, "authority_missing"),
    ("another grant id", "grant", _set("grant.grant_id", "0x" + "ab" * 32), "grant_mismatch"),
    ("another contract id", "contract", _set("grant.contract_id", "0x" + "ab" * 32), "contract_mismatch"),
    ("edited terms hash", "contract", _set("grant.terms_hash", "0x" + "cd" * 32), "terms_mismatch"),
    (
        "acceptance signed by nobody",
        "contract",
        _set("grant.signatures.0.signature", "0x" + "11" * 65),
        "forged_signature",
    ),
    (
        "note of another size",
        "grant",
        _set("checkpoint_note", "sharetrail\n1\n" + "A" * 43 + "=\n"),
        "note_mismatch",
    ),
]


def _first_line(out: str) -> str:
    return out.splitlines()[0] if out else ""


def _verdict(line: str) -> str:
    return "OK" if line.startswith("OK (") else line.removeprefix("FAILED ").split(":", 1)[0]


@pytest.mark.parametrize(("case", "source", "mutation", "expected"), CASES, ids=[c[0] for c in CASES])
def test_both_verifiers_agree(
    env: Env, tmp_path: Path, case: str, source: str, mutation: Mutation | None, expected: str
) -> None:
    bundle = copy.deepcopy(env.bundles[source])
    if mutation is not None:
        mutation(bundle, env)
    # the library
    if expected == "OK":
        verify_bundle(bundle, env.rpc)
    else:
        with pytest.raises(VerificationError) as info:
            verify_bundle(bundle, env.rpc)
        assert info.value.code == expected, info.value.message
    # the CLI and the standalone script, on the same file
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle, ensure_ascii=False), encoding="utf-8")
    cli = CliRunner().invoke(cli_app, ["verify-bundle", str(path), "--rpc", env.rpc])
    script = subprocess.run(
        [sys.executable, "-I", str(SCRIPT), str(path), env.rpc], capture_output=True, text=True, timeout=120
    )
    cli_line, script_line = _first_line(cli.output), _first_line(script.stdout)
    assert _verdict(cli_line) == expected, cli.output
    assert _verdict(script_line) == expected, script.stdout + script.stderr
    assert (cli.exit_code, script.returncode) == ((0, 0) if expected == "OK" else (1, 1))
    if expected == "OK":
        assert cli_line == script_line  # the same words, so neither says more than it checked


def test_ok_says_what_was_verified(env: Env, tmp_path: Path) -> None:
    lines = {}
    for name in ("no_grant", "grant", "contract", "declaration"):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(env.bundles[name], ensure_ascii=False), encoding="utf-8")
        out = subprocess.run(
            [sys.executable, "-I", str(SCRIPT), str(path), env.rpc],
            capture_output=True,
            text=True,
            timeout=120,
        )
        lines[name] = out.stdout.strip()
    no_grant = env.bundles["no_grant"]
    assert lines["no_grant"] == (
        f"OK (inclusion and anchor verified; {NOT_CHECKED}): log entry {no_grant['leaf_index']} is included "
        f"in the root anchored at tree size {no_grant['tree_size']} on chain {no_grant['anchor']['chain_id']}"
    )
    grant_id = env.bundles["grant"]["grant"]["grant_id"]
    assert lines["grant"].startswith(
        f"OK (inclusion, anchor and authorization verified: share grant {grant_id}): log entry "
    )
    contract_id = env.bundles["contract"]["grant"]["contract_id"]
    assert lines["contract"].startswith(
        f"OK (inclusion, anchor and authorization verified: open contract {contract_id}): log entry "
    )
    assert lines["declaration"].startswith(
        "OK (inclusion and anchor verified; the entry is a declaration event, not an access: "
        "authorization not checked): log entry "
    )


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested deeper than 64 levels"),
        (b"\xff\xfe{}", "is not UTF-8 text (byte 0)"),
        (b"{not json", "is not JSON"),
        (b"[]", "not a version 1 proof bundle"),
    ],
    ids=["deep", "not-utf8", "not-json", "not-a-bundle"],
)
def test_unreadable_files_fail_cleanly(env: Env, tmp_path: Path, content: bytes, why: str) -> None:
    path = tmp_path / "bundle.json"
    path.write_bytes(content)
    for argv in (
        [sys.executable, "-m", "api.cli", "verify-bundle", str(path), "--rpc", env.rpc],
        [sys.executable, "-I", str(SCRIPT), str(path), env.rpc],
    ):
        out = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        assert out.returncode == 1, out.stdout + out.stderr
        assert out.stdout.startswith("FAILED malformed_bundle: ") and why in out.stdout, out.stdout
        assert "Traceback" not in out.stderr, out.stderr
