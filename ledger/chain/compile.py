"""Compile the Solidity sources into committed ABI/bytecode artifacts.

The compiler is pinned (``SOLC_VERSION``) and never downloaded at run time: py-solc-x drives either a
native ``solc`` of exactly that version, if one is installed, or the npm ``solc`` package (solc-js)
through ``contracts/solc-shim.js``, which answers ``--version`` and ``--standard-json`` like a native
binary. Imports are resolved here and every source is inlined into the standard-JSON input, so both
compilers see byte-identical input and produce byte-identical output.

The artifacts are committed (``ledger/chain/artifacts``) so that running sharetrail needs no
compiler; ``tests/unit/test_artifacts.py`` recompiles and fails if they differ from the sources,
following web3.py's habit of one script, a pinned compiler and a check.

    python -m ledger.chain.compile           # regenerate artifacts
    python -m ledger.chain.compile --check   # exit 1 if artifacts are stale
"""

from __future__ import annotations

import argparse
import json
import posixpath
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import solcx
from solcx.exceptions import SolcError
from solcx.install import get_executable

from ledger.errors import LedgerError

SOLC_VERSION = "0.8.28"
EVM_VERSION = "cancun"
OPTIMIZER_RUNS = 200

_IMPORT_RE = re.compile(r"""^\s*import\s+(?:[^;]*?from\s+)?["']([^"']+)["']""", re.MULTILINE)

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTRACTS_DIR = REPO_ROOT / "contracts"
NODE_MODULES = CONTRACTS_DIR / "node_modules"
SHIM = CONTRACTS_DIR / "solc-shim.js"
ARTIFACTS_DIR = Path(__file__).resolve().parent / "artifacts"
# Every top-level source in contracts/ is a deployable contract named after its file.
CONTRACTS: tuple[str, ...] = tuple(sorted(p.stem for p in CONTRACTS_DIR.glob("*.sol")))


class CompileError(LedgerError):
    code = "compile_failed"


def _read_unit(unit: str) -> str:
    path = REPO_ROOT / unit if unit.startswith("contracts/") else NODE_MODULES / unit
    if not path.is_file():
        raise CompileError(f"cannot resolve Solidity import {unit!r} (looked at {path}); run scripts/setup")
    return path.read_text(encoding="utf-8")


def standard_input(names: tuple[str, ...] = CONTRACTS) -> dict[str, Any]:
    """Build the standard-JSON input with every transitive import inlined, in a stable order."""
    sources: dict[str, str] = {}
    pending = [f"contracts/{name}.sol" for name in names]
    while pending:
        unit = pending.pop()
        if unit in sources:
            continue
        text = _read_unit(unit)
        sources[unit] = text
        for target in _IMPORT_RE.findall(text):
            if target.startswith("."):
                target = posixpath.normpath(posixpath.join(posixpath.dirname(unit), target))
            pending.append(target)
    return {
        "language": "Solidity",
        "sources": {unit: {"content": sources[unit]} for unit in sorted(sources)},
        "settings": {
            "evmVersion": EVM_VERSION,
            "optimizer": {"enabled": True, "runs": OPTIMIZER_RUNS},
            "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}},
        },
    }


def find_compiler() -> Path:
    """A native solc of exactly SOLC_VERSION if present, else the solc-js shim."""
    candidates: list[Path] = []
    native = shutil.which("solc")
    if native:
        candidates.append(Path(native))
    try:
        for version in solcx.get_installed_solc_versions():
            if str(version) == SOLC_VERSION:
                candidates.append(get_executable(version))
    except SolcError:
        pass
    for candidate in candidates:
        try:
            if str(solcx.wrapper.get_solc_version(candidate)) == SOLC_VERSION:
                return candidate
        except (SolcError, OSError, subprocess.SubprocessError):
            continue
    if not (NODE_MODULES / "solc").is_dir():
        raise CompileError("solc-js is not installed: run `npm ci` in contracts/ (scripts/setup does)")
    return SHIM


def compile_all(names: tuple[str, ...] = CONTRACTS) -> dict[str, dict[str, Any]]:
    compiler = find_compiler()
    full_version = solcx.wrapper.get_version_str_from_solc_binary(compiler)
    try:
        output = solcx.compile_standard(standard_input(names), solc_binary=compiler)
    except SolcError as exc:
        raise CompileError(f"solc failed: {exc}") from exc
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise CompileError("solc errors:\n" + "\n".join(e["formattedMessage"] for e in errors))
    artifacts: dict[str, dict[str, Any]] = {}
    for name in names:
        unit = output["contracts"][f"contracts/{name}.sol"][name]
        artifacts[name] = {
            "contractName": name,
            "compiler": {
                "version": full_version,
                "evmVersion": EVM_VERSION,
                "optimizer": {"enabled": True, "runs": OPTIMIZER_RUNS},
            },
            "abi": unit["abi"],
            "bytecode": "0x" + unit["evm"]["bytecode"]["object"],
            "deployedBytecode": "0x" + unit["evm"]["deployedBytecode"]["object"],
        }
    return artifacts


def _dump(artifact: dict[str, Any]) -> str:
    return json.dumps(artifact, indent=1, sort_keys=True) + "\n"


def write_artifacts(artifacts: dict[str, dict[str, Any]]) -> None:
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    for name, artifact in artifacts.items():
        (ARTIFACTS_DIR / f"{name}.json").write_text(_dump(artifact), encoding="utf-8")


def stale_artifacts(artifacts: dict[str, dict[str, Any]]) -> list[str]:
    """Names whose committed artifact differs from a fresh compilation (ignoring the compiler build tag)."""
    stale = []
    for name, artifact in artifacts.items():
        path = ARTIFACTS_DIR / f"{name}.json"
        if not path.is_file():
            stale.append(name)
            continue
        committed = json.loads(path.read_text(encoding="utf-8"))
        if {k: v for k, v in committed.items() if k != "compiler"} != {
            k: v for k, v in artifact.items() if k != "compiler"
        } or committed["compiler"]["version"].split("+")[0] != SOLC_VERSION:
            stale.append(name)
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 if committed artifacts are stale")
    args = parser.parse_args(argv)
    artifacts = compile_all()
    if args.check:
        stale = stale_artifacts(artifacts)
        if stale:
            print("stale artifacts: " + ", ".join(stale), file=sys.stderr)
            return 1
        print("artifacts match sources")
        return 0
    write_artifacts(artifacts)
    print(f"compiled {', '.join(artifacts)} with solc {SOLC_VERSION} -> {ARTIFACTS_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
