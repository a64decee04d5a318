"""The committed ABI/bytecode artifacts are exactly what the pinned compiler makes of the sources."""

from __future__ import annotations

import json

from ledger.chain import compile as solc


def test_artifacts_match_sources() -> None:
    fresh = solc.compile_all()
    assert set(fresh) == set(solc.CONTRACTS) and "PartyRegistry" in fresh
    assert solc.stale_artifacts(fresh) == [], "run `python -m ledger.chain.compile` and commit the artifacts"
    for name, artifact in fresh.items():
        committed = json.loads((solc.ARTIFACTS_DIR / f"{name}.json").read_text(encoding="utf-8"))
        assert committed["compiler"]["version"].startswith(solc.SOLC_VERSION + "+")
        assert committed["compiler"]["evmVersion"] == solc.EVM_VERSION
        assert committed["bytecode"] == artifact["bytecode"]


def test_a_changed_source_is_detected() -> None:
    fresh = solc.compile_all(("PartyRegistry",))
    tampered = {
        "PartyRegistry": {**fresh["PartyRegistry"], "bytecode": fresh["PartyRegistry"]["bytecode"] + "00"}
    }
    assert solc.stale_artifacts(tampered) == ["PartyRegistry"]


def test_imports_are_inlined_for_any_compiler() -> None:
    units = solc.standard_input(("PartyRegistry",))["sources"]
    assert "@openzeppelin/contracts/access/AccessControl.sol" in units
    assert all("content" in u for u in units.values())
