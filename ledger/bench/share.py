"""Share workflow throughput: request → decision → grant per second, and gas per step, beside the
alternatives the same run measures.

One fresh data directory per chain (SQLite store), on the embedded chain or an external JSON-RPC node.
Each case runs ``n`` complete workflows after ``warmup`` untimed ones, interleaved round by round
(one workflow of every case per round, so the shared machine's changing load falls on all cases
alike), through the real services
(``ShareService`` — checks, EIP-712 documents, the relayed transactions, the settle read, the store
rows and the log entries of every state change):

* *custodial, level 2* — the provider's decision issues the grant: request tx + decision tx;
* *client mode, level 2* — the same, but requester and provider keep their keys: each document is
  returned, signed with ``eth_account`` (as a wallet would), checked, then relayed;
* *custodial, level 3* — one more transaction: the registrar's co-signature (多签) issues the grant;
* *unconditional, auto-grant* — the contract grants in the request's own transaction
  (智能合约自动共享): one transaction instead of one per step;
* *contract calls only, level 2* — the two transactions of the first case, signed with the same kind
  of custodial keys and sent through ``Chain.transact`` with no store, log, checks or settle read:
  the floor that the services add to; once with the default gas estimate (the naive relay: on the
  embedded chain py-evm estimates by a binary search of ~13 executions) and once as the services
  relay (one eth_call for the custom error, then a fixed gas limit).

Revocations per second (custodial, by the provider) are timed on the grants of the first case, each
revoked in the round that issued it. Gas is
read from the receipts of the timed transactions (median per step), each measured once the signers'
nonce slots are warm, as in steady operation.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypedDict

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from rich.console import Group
from rich.table import Table

from ledger.identity.parties import NewParty
from ledger.identity.uscc import make_uscc
from ledger.runtime import Ledger
from ledger.settings import Settings
from ledger.sharing import eip712
from ledger.sharing.catalog import FieldSpec, ResourceSpec, resource_id_bytes32
from ledger.sharing.consent import RELAY_GAS
from ledger.sharing.grants import request_id_bytes32
from ledger.sharing.requests import Scope, pending_document
from ledger.store.models import Party, Resource, ShareRequest
from ledger.types import MaskingRule, OpenType, PartyKind, ShareType, Signing

TOKEN = "st_bench-share-registrar"
CASES = (
    "custodial, L2: request + decision",
    "client mode, L2: eth_account signs",
    "custodial, L3: + co-signature",
    "unconditional: auto-grant",
    "contract calls only, L2: gas estimated",
    "contract calls only, L2: eth_call + gas cap",
)
GAS_STEPS = (
    "catalog version",
    "request (conditional)",
    "request + auto-grant",
    "decision → grant",
    "decision → awaiting co-signature",
    "co-signature → grant",
    "revocation",
)


class CaseResult(TypedDict):
    case: str
    n: int
    seconds: float
    grants_per_s: float
    tx_per_grant: int


class ShareBenchResult(TypedDict):
    chain: str  # "embedded" or "external"
    cases: list[CaseResult]
    revocation: CaseResult  # "grants_per_s" there is revocations per second
    gas: dict[str, int]  # GAS_STEPS -> median gas used


@dataclass
class _World:
    ledger: Ledger
    registrar: Party
    provider: Party
    requester: Party
    wallet_provider: Party
    wallet_requester: Party
    keys: dict[str, LocalAccount]  # client-custody party id -> its key (the "wallet")
    level2: Resource
    level3: Resource
    auto: Resource
    wallet_level2: Resource
    raw_provider: Party  # the floor case's own departments, so their nonces are counted locally
    raw_requester: Party
    raw_level2: Resource


def _spec(code: str, *, share_type: ShareType, level: int) -> ResourceSpec:
    return ResourceSpec(
        code=code,
        name=code,
        format="table",
        share_type=share_type,
        open_type=OpenType.NONE,
        level=level,
        update_frequency="monthly",
        legal_basis="bench",
        fields=[FieldSpec("name", sensitive=True, masking=MaskingRule.NAME), FieldSpec("district")],
    )


def _scope() -> Scope:
    now = datetime.now(UTC)
    return Scope(
        fields=["district"], valid_from=now - timedelta(minutes=1), valid_until=now + timedelta(days=365)
    )


def _wallet_sign(key: LocalAccount, document: dict[str, Any]) -> str:
    """What a client-mode party does: sign the typed data it was given, with eth_account alone."""
    signature: str = Account.sign_typed_data(key.key, full_message=document).signature.to_0x_hex()
    return signature


def _setup(ledger: Ledger) -> _World:
    parties = ledger.parties
    registrar = parties.get(ledger.bootstrap.registrar_id)
    seq = iter(range(900, 1000))

    def department(name: str, key: LocalAccount | None = None) -> Party:
        new = NewParty(PartyKind.DEPARTMENT, name, make_uscc(next(seq)), None if key is None else key.address)
        return parties.register(registrar, new)[0]

    provider, requester = department("bench provider"), department("bench requester")
    raw_provider, raw_requester = department("bench raw provider"), department("bench raw requester")
    keys = {"provider": Account.create(), "requester": Account.create()}
    wallet_provider = department("bench wallet provider", keys["provider"])
    wallet_requester = department("bench wallet requester", keys["requester"])
    catalog = ledger.catalog
    level2 = catalog.create(provider, _spec("BENCH-L2", share_type=ShareType.CONDITIONAL, level=2))
    level3 = catalog.create(provider, _spec("BENCH-L3", share_type=ShareType.CONDITIONAL, level=3))
    auto = catalog.create(provider, _spec("BENCH-AUTO", share_type=ShareType.UNCONDITIONAL, level=1))
    raw_level2 = catalog.create(raw_provider, _spec("BENCH-RAW", share_type=ShareType.CONDITIONAL, level=2))
    draft = catalog.create(
        wallet_provider, _spec("BENCH-WALLET", share_type=ShareType.CONDITIONAL, level=2), Signing.CLIENT
    )
    pending = draft.pending_json
    assert pending is not None
    document = json.loads(pending)["typed_data"]
    wallet_level2 = catalog.submit_signature(
        wallet_provider, draft.id, _wallet_sign(keys["provider"], document)
    )
    return _World(
        ledger=ledger,
        registrar=registrar,
        provider=provider,
        requester=requester,
        wallet_provider=wallet_provider,
        wallet_requester=wallet_requester,
        keys={wallet_provider.id: keys["provider"], wallet_requester.id: keys["requester"]},
        level2=level2,
        level3=level3,
        auto=auto,
        wallet_level2=wallet_level2,
        raw_provider=raw_provider,
        raw_requester=raw_requester,
        raw_level2=raw_level2,
    )


def _request(world: _World, requester: Party, resource: Resource, signing: Signing) -> ShareRequest:
    return world.ledger.sharing.submit(
        requester,
        resource_id=resource.id,
        purpose_code="employment_service",
        purpose_text="bench",
        legal_basis="bench",
        scope=_scope(),
        signing=signing,
    )


def _decide(world: _World, provider: Party, request_id: str, signing: Signing) -> ShareRequest:
    return world.ledger.sharing.decide(
        provider, request_id, approve=True, reason="bench", conditions=None, signing=signing
    )


def _custodial(world: _World, resource: Resource) -> Callable[[], ShareRequest]:
    def run() -> ShareRequest:
        row = _request(world, world.requester, resource, Signing.CUSTODIAL)
        row = _decide(world, world.provider, row.id, Signing.CUSTODIAL)
        if row.grant_id is None:
            row = world.ledger.sharing.cosign(world.registrar, row.id)
        assert row.grant_id is not None, row.status
        return row

    return run


def _client(world: _World) -> Callable[[], ShareRequest]:
    sharing = world.ledger.sharing
    requester, provider = world.wallet_requester, world.wallet_provider

    def run() -> ShareRequest:
        row = _request(world, requester, world.wallet_level2, Signing.CLIENT)
        document = json.loads(row.request_typed_data)
        row = sharing.submit_signature(requester, row.id, _wallet_sign(world.keys[requester.id], document))
        row = _decide(world, provider, row.id, Signing.CLIENT)
        document = pending_document(row, provider.id)  # kept with its terms until signed
        assert document is not None
        row = sharing.decision_signature(provider, row.id, _wallet_sign(world.keys[provider.id], document))
        assert row.grant_id is not None, row.status
        return row

    return run


def _auto(world: _World) -> Callable[[], ShareRequest]:
    def run() -> ShareRequest:
        row = _request(world, world.requester, world.auto, Signing.CUSTODIAL)
        assert row.grant_id is not None, row.status
        return row

    return run


def _raw(world: _World) -> tuple[Callable[[], list[int]], Callable[[], list[int]]]:
    """The same two transactions, signed with custodial keys and sent with nothing around them: with
    ``Chain.transact``'s default gas estimate, and as ``Consent.relay`` sends them (eth_call, then a
    fixed gas limit). The two share one pair of departments and their locally counted nonces."""
    ledger = world.ledger
    consent = ledger.sharing.consent
    requester_key = ledger.parties.signer(world.raw_requester)
    provider_key = ledger.parties.signer(world.raw_provider)
    requester_nonce = [consent.nonce(world.raw_requester.address)]
    provider_nonce = [consent.nonce(world.raw_provider.address)]
    now = int(time.time())

    def prepared() -> tuple[Any, Any]:
        request_id = request_id_bytes32(uuid.uuid4().hex)
        request = consent.typed(
            "Request",
            {
                "requestId": request_id,
                "resourceId": resource_id_bytes32(world.raw_level2.id),
                "requester": world.raw_requester.address,
                "purposeHash": keccak(text="bench purpose"),
                "scopeHash": keccak(text="bench scope"),
                "validFrom": now - 60,
                "validUntil": now + 86_400 * 365,
                "maxAccesses": 100,
                "nonce": requester_nonce[0],
            },
        )
        decision = consent.typed(
            "Decision",
            {
                "requestId": request_id,
                "approve": True,
                "conditionsHash": keccak(text="bench scope"),
                "reasonHash": keccak(text="bench"),
                "validFrom": now - 60,
                "validUntil": now + 86_400 * 365,
                "maxAccesses": 100,
                "nonce": provider_nonce[0],
            },
        )
        requester_nonce[0] += 1
        provider_nonce[0] += 1
        functions = ledger.contracts["ShareLedger"].functions
        return (
            functions.submitRequest(eip712.as_tuple(request), eip712.sign(requester_key, request)),
            functions.decide(eip712.as_tuple(decision), eip712.sign(provider_key, decision)),
        )

    def estimated() -> list[int]:
        return [ledger.chain.transact(fn, ledger.funder).gas_used for fn in prepared()]

    def capped() -> list[int]:
        used = []
        for fn in prepared():
            ledger.chain.call(fn)
            used.append(ledger.chain.transact(fn, ledger.funder, gas=RELAY_GAS).gas_used)
        return used

    return estimated, capped


@dataclass
class _Case:
    name: str
    tx_per_grant: int
    step: Callable[[], Any]
    seconds: float = 0.0
    outputs: list[Any] | None = None

    def result(self, n: int) -> CaseResult:
        return {
            "case": self.name,
            "n": n,
            "seconds": self.seconds,
            "grants_per_s": n / self.seconds,
            "tx_per_grant": self.tx_per_grant,
        }


def _interleaved(cases: Sequence[_Case], n: int, warmup: int) -> None:
    """Run ``warmup`` untimed then ``n`` timed rounds, each round one step of every case in turn, so a
    change in the machine's load (it is shared) or a slower chain later in the run hits every case
    alike instead of whichever ran last."""
    for _ in range(warmup):
        for case in cases:
            case.step()
    for case in cases:
        case.outputs = []
    for _ in range(n):
        for case in cases:
            start = time.perf_counter()
            out = case.step()
            case.seconds += time.perf_counter() - start
            assert case.outputs is not None
            case.outputs.append(out)


def bench_share(n: int, *, chain: str = "embedded", warmup: int = 1) -> ShareBenchResult:
    """Time ``n`` workflows per case (and ``n`` revocations) on ``chain`` ("embedded" or a URL)."""
    if n < 1 or warmup < 0:
        raise ValueError("n must be >= 1 and warmup >= 0")
    with (
        tempfile.TemporaryDirectory(prefix="sharetrail-bench-share-") as tmp,
        Ledger.open(Settings(data_dir=Path(tmp), chain=chain, bootstrap_token=TOKEN)) as ledger,
    ):
        world = _setup(ledger)
        level2 = _custodial(world, world.level2)
        estimated, capped = _raw(world)
        last_grant: list[str] = []

        def custodial_level2() -> ShareRequest:
            row = level2()
            assert row.grant_id is not None
            last_grant.append(row.grant_id)
            return row

        def revoke() -> dict[str, Any]:  # the grant the level-2 case issued in this round
            return ledger.sharing.grants.revoke(world.provider, last_grant.pop(), "bench")

        cases = [
            _Case(CASES[0], 2, custodial_level2),
            _Case("revocation (custodial, provider)", 1, revoke),
            _Case(CASES[1], 2, _client(world)),
            _Case(CASES[2], 3, _custodial(world, world.level3)),
            _Case(CASES[3], 1, _auto(world)),
            _Case(CASES[4], 2, estimated),
            _Case(CASES[5], 2, capped),
        ]
        _interleaved(cases, n, warmup)
        by_name = {case.name: case.outputs or [] for case in cases}

        def gas(tx_hash: str | None) -> int:
            assert tx_hash is not None
            return int(ledger.chain.w3.eth.get_transaction_receipt(tx_hash)["gasUsed"])  # type: ignore[arg-type]

        level3 = by_name[CASES[2]]
        steps: dict[str, list[int]] = {
            "catalog version": [gas(world.auto.tx_hash)],  # the provider's third: a warm nonce slot
            "request (conditional)": [gas(r.request_tx) for r in by_name[CASES[0]]],
            "request + auto-grant": [gas(r.request_tx) for r in by_name[CASES[3]]],
            "decision → grant": [gas(r.decision_tx) for r in by_name[CASES[0]]],
            "decision → awaiting co-signature": [gas(r.decision_tx) for r in level3],
            "co-signature → grant": [gas(json.loads(r.cosign_txs)[0]) for r in level3],
            "revocation": [gas(r["revoked_tx"]) for r in by_name["revocation (custodial, provider)"]],
        }
        results = {case.name: case.result(n) for case in cases}
        return {
            "chain": "embedded" if ledger.chain.kind == "embedded" else "external",
            "cases": [results[name] for name in CASES],
            "revocation": results["revocation (custodial, provider)"],
            "gas": {name: int(statistics.median(values)) for name, values in steps.items()},
        }


def run_share_bench(
    n: int, *, external: bool = True, progress: Callable[[str], None] | None = None
) -> list[ShareBenchResult]:
    """The embedded chain, then (if asked) a throw-away Hardhat node."""
    say = progress or (lambda _msg: None)
    say(f"share workflow on the embedded chain, n={n} per case …")
    results = [bench_share(n)]
    if external:
        from ledger.chain.devnode import HardhatNode

        say(f"share workflow on an external Hardhat node, n={n} per case …")
        with HardhatNode() as node:
            results.append(bench_share(n, chain=node.url))
    return results


def render(results: Sequence[ShareBenchResult]) -> Group:
    rates = Table(title="Share workflow: request → decision → grant")
    for name in ("chain", "case", "n", "seconds", "grants/s", "tx/grant", "tx/s"):
        rates.add_column(name, justify="left" if name in ("chain", "case") else "right")
    for result in results:
        for case in result["cases"]:
            rates.add_row(
                result["chain"],
                case["case"],
                str(case["n"]),
                f"{case['seconds']:.2f}",
                f"{case['grants_per_s']:.1f}",
                str(case["tx_per_grant"]),
                f"{case['grants_per_s'] * case['tx_per_grant']:.1f}",
            )
        rev = result["revocation"]
        rates.add_row(
            result["chain"],
            rev["case"],
            str(rev["n"]),
            f"{rev['seconds']:.2f}",
            "—",
            "1",
            f"{rev['grants_per_s']:.1f}",
        )
    gas = Table(title="Share workflow: gas per step (median of the timed transactions)")
    gas.add_column("step")
    for result in results:
        gas.add_column(f"gas ({result['chain']})", justify="right")
    for step in GAS_STEPS:
        gas.add_row(step, *(f"{result['gas'][step]:,}" for result in results))
    return Group(rates, gas)
