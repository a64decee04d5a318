"""Chain throughput: party registrations per second, end to end and on chain alone, beside a floor.

Three cases per chain, each timed over ``n`` transactions after ``warmup`` untimed ones, on a fresh
temporary data directory:

* ``PartyService.register`` — the real path: a new custodial key sealed by the vault, the store
  rows, the ``PartyRegistry.register`` transaction (estimate, sign, send, receipt) and the
  ``registered_tx`` update;
* ``registry.register`` through ``Chain.transact`` — the on-chain part alone (random addresses,
  no store, no key generation);
* a plain value transfer through ``Chain.send_value`` — the naive floor: a 21,000-gas transfer
  with no estimate and no contract code.

Every transaction is signed locally and, on the embedded chain, its sender recovered again by
py-evm; both go through eth-keys, whose ECC backend is coincurve (libsecp256k1) when importable.
eth-keys resolves the backend lazily on each key operation from ``ECC_BACKEND_CLASS`` (see
``eth_keys.backends.get_backend_class``), so :func:`run_chain_bench` runs the "without coincurve"
case in a subprocess with that variable set to the pure-Python ``NativeECCBackend``; the
subprocess reports the backend class its signer actually used, and the figure is shown with it.
"""

from __future__ import annotations

import argparse
import enum
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypedDict

from eth_account.signers.local import LocalAccount
from rich.table import Table
from web3 import Web3

from ledger.identity.parties import NewParty, party_id_bytes32, uscc_hash
from ledger.identity.uscc import make_uscc
from ledger.runtime import Ledger
from ledger.settings import Settings
from ledger.types import PartyKind

NATIVE_BACKEND = "eth_keys.backends.native.NativeECCBackend"
_BOOTSTRAP_TOKEN = "st_bench-registrar-token"
# Credit-code sequence numbers: end-to-end registrations and raw registry calls must not collide
# (PartyRegistry refuses a credit-code hash twice).
_SEQ_PARTIES = 1_000_000
_SEQ_RAW = 50_000_000


class Case(enum.StrEnum):
    REGISTRATION = "party registration (PartyService.register)"
    REGISTRY_TX = "registry.register tx only (Chain.transact)"
    TRANSFER = "value transfer (Chain.send_value), floor"


class CaseResult(TypedDict):
    case: str
    n: int
    seconds: float
    tx_per_s: float


class ChainBenchResult(TypedDict):
    chain: str  # "embedded" or "external"
    backend: str  # the eth-keys ECC backend class the signer used
    cases: list[CaseResult]


def active_backend(signer: LocalAccount) -> str:
    """The ECC backend class name behind ``signer``; refuses to report a backend that was not used.

    eth-keys resolves the backend on every key operation (``LazyBackend.backend``), so the class
    the signer's key object resolves now is the one every signature and recovery of the run used.
    """
    from eth_keys.backends import get_backend_class

    configured = get_backend_class().__name__
    used = type(signer._key_obj.backend).__name__
    if configured != used:
        raise RuntimeError(f"eth-keys configured {configured} but the signer used {used}")
    return used


def _timed(case: Case, n: int, warmup: int, step: Callable[[int], object]) -> CaseResult:
    for i in range(warmup):
        step(n + i)
    start = time.perf_counter()
    for i in range(n):
        step(i)
    seconds = time.perf_counter() - start
    return {"case": case.value, "n": n, "seconds": seconds, "tx_per_s": n / seconds}


def bench_registrations(
    n: int, *, chain: str = "embedded", warmup: int = 2, raw: bool = True, floor: bool = True
) -> ChainBenchResult:
    """Time ``n`` party registrations (and, if asked, the raw tx and the floor) on ``chain``.

    ``chain`` is ``"embedded"`` or an ``http(s)://`` JSON-RPC URL, as in :class:`Settings`.
    """
    if n < 1 or warmup < 0:
        raise ValueError("n must be >= 1 and warmup >= 0")
    with (
        tempfile.TemporaryDirectory(prefix="sharetrail-bench-") as tmp,
        Ledger.open(Settings(data_dir=Path(tmp), chain=chain, bootstrap_token=_BOOTSTRAP_TOKEN)) as ledger,
    ):
        registrar = ledger.parties.get(ledger.bootstrap.registrar_id)
        signer = ledger.parties.signer(registrar)
        registry = ledger.contracts["PartyRegistry"]
        cases: list[CaseResult] = []

        def register(i: int) -> object:
            new = NewParty(PartyKind.ENTERPRISE, f"bench enterprise {i}", make_uscc(_SEQ_PARTIES + i))
            return ledger.parties.register(registrar, new)

        def register_raw(i: int) -> object:
            address = Web3.to_checksum_address(secrets.token_bytes(20))
            fn = registry.functions.register(
                address,
                PartyKind.ENTERPRISE.chain_value,
                party_id_bytes32(uuid.uuid4().hex),
                uscc_hash(make_uscc(_SEQ_RAW + i)),
            )
            return ledger.chain.transact(fn, signer)

        def transfer(_: int) -> object:
            return ledger.chain.send_value(ledger.funder, signer.address, 1)

        cases.append(_timed(Case.REGISTRATION, n, warmup, register))
        if raw:
            cases.append(_timed(Case.REGISTRY_TX, n, warmup, register_raw))
        if floor:
            cases.append(_timed(Case.TRANSFER, n, warmup, transfer))
        return {
            "chain": "embedded" if ledger.chain.kind == "embedded" else "external",
            "backend": active_backend(signer),
            "cases": cases,
        }


def bench_in_subprocess(n: int, *, env: dict[str, str], chain: str = "embedded") -> ChainBenchResult:
    """Run :func:`bench_registrations` in a fresh interpreter with ``env`` added (e.g. the ECC backend)."""
    package_root = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p)
    proc = subprocess.run(
        [sys.executable, "-m", "ledger.bench.chain", "--n", str(n), "--chain", chain],
        env={**os.environ, "PYTHONPATH": path, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark subprocess failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    result: ChainBenchResult = json.loads(proc.stdout)
    return result


def run_chain_bench(
    n: int, *, external: bool = True, progress: Callable[[str], None] | None = None
) -> list[ChainBenchResult]:
    """Embedded with coincurve (in process), embedded without (subprocess), then a Hardhat node."""
    say = progress or (lambda _msg: None)
    say(f"embedded chain, default ECC backend, n={n} …")
    results = [bench_registrations(n)]
    say(f"embedded chain, ECC_BACKEND_CLASS={NATIVE_BACKEND}, n={n} (subprocess) …")
    results.append(bench_in_subprocess(n, env={"ECC_BACKEND_CLASS": NATIVE_BACKEND}))
    if external:
        from ledger.chain.devnode import HardhatNode

        say(f"external Hardhat node, default ECC backend, n={n} …")
        with HardhatNode() as node:
            results.append(bench_registrations(n, chain=node.url))
    return results


def render(results: Sequence[ChainBenchResult]) -> Table:
    table = Table(title="Chain: party registrations")
    for name in ("case", "n", "seconds", "tx/s", "backend"):
        table.add_column(name, justify="left" if name in ("case", "backend") else "right")
    for result in results:
        for case in result["cases"]:
            table.add_row(
                f"{result['chain']}: {case['case']}",
                str(case["n"]),
                f"{case['seconds']:.2f}",
                f"{case['tx_per_s']:.1f}",
                result["backend"],
            )
    return table


def _main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="one bench_registrations run, printed as JSON")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--chain", default="embedded")
    args = parser.parse_args(argv)
    print(json.dumps(bench_registrations(args.n, chain=args.chain)))


if __name__ == "__main__":
    _main()
