"""Bulk publishing of the catalog (``CatalogService.create_many``) on the real embedded chain and the
real store (SQLite and PostgreSQL).

A department importing its existing catalog gets, per item, exactly what ``create`` gives — a
version 1 signed by the department and checked on chain, the same rows — but up to ``chunk`` items
per ``multicall`` transaction. Every refusal is decided before anything is sent: each is checked by
its exact code, and for each, nothing is on chain (no block, no nonce spent) and nothing is stored.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pytest
from eth_account import Account
from eth_typing import HexStr
from eth_utils.crypto import keccak
from sqlalchemy import func, select
from web3.logs import DISCARD

from ledger.canonical import canonical_json
from ledger.errors import Conflict, ContractRevert, Forbidden, InvalidInput, LedgerError
from ledger.identity.parties import NewParty
from ledger.identity.uscc import make_uscc
from ledger.runtime import Ledger
from ledger.sharing.catalog import (
    BULK_BASE_GAS,
    BULK_ITEM_GAS,
    FieldSpec,
    ResourceSpec,
    resource_id_bytes32,
)
from ledger.sharing.consent import RelayedMany, StaleNonce
from ledger.store.models import Party, Resource, ResourceVersion
from ledger.types import MaskingRule, OpenType, PartyKind, ShareType


@dataclass(frozen=True)
class Env:
    ledger: Ledger
    registrar: Party
    minzheng: Party  # the importing department
    gongan: Party  # another department
    enterprise: Party
    own_key: Party  # a department that keeps its own key (client custody)


@pytest.fixture
def env(ledger: Ledger) -> Env:
    registrar = ledger.parties.get(ledger.bootstrap.registrar_id)
    parties = [
        ledger.parties.register(registrar, NewParty(kind, name, make_uscc(700 + n), address))[0]
        for n, (kind, name, address) in enumerate(
            [
                (PartyKind.DEPARTMENT, "贵阳市民政局", None),
                (PartyKind.DEPARTMENT, "贵阳市公安局", None),
                (PartyKind.ENTERPRISE, "数联企业", None),
                (PartyKind.DEPARTMENT, "自持密钥部门", Account.create().address),
            ]
        )
    ]
    return Env(ledger, registrar, *parties)


def spec(code: str, **changes: Any) -> ResourceSpec:
    base = ResourceSpec(
        code=code,
        name=f"资源 {code}",
        format="table",
        share_type=ShareType.CONDITIONAL,
        open_type=OpenType.NONE,
        level=2,
        update_frequency="monthly",
        legal_basis="《贵阳市政府数据共享开放条例》",
        fields=[FieldSpec("name", sensitive=True, masking=MaskingRule.NAME), FieldSpec("district")],
    )
    return replace(base, **changes)


def catalog_of(n: int, prefix: str = "GY-MZ") -> list[ResourceSpec]:
    """``n`` items of varied share type, open type and level."""
    shares, opens = list(ShareType), list(OpenType)
    return [
        spec(f"{prefix}-{i:03d}", share_type=shares[i % 3], open_type=opens[i % 4], level=1 + i % 4)
        for i in range(n)
    ]


TIMES = ("created_at", "updated_at")  # returned as written, read back naive from SQLite
# The columns of a Resource that differ between two items published alike.
PER_ITEM = (
    "id",
    "code",
    "name",
    "level",
    "share_type",
    "open_type",
    "metadata_json",
    "metadata_hash",
    "tx_hash",
)


def columns(row: Any, *skip: str) -> dict[str, Any]:
    return {c.key: getattr(row, c.key) for c in row.__table__.columns if c.key not in skip}


def on_chain(ledger: Ledger, resource_id: str) -> tuple[Any, ...]:
    share = ledger.contracts["ShareLedger"]
    return tuple(ledger.chain.call(share.functions.resourceOf(resource_id_bytes32(resource_id))))


def nonce(env: Env, party: Party) -> int:
    """The party's nonce on chain, read without the service (whose reader a test may replace)."""
    share = env.ledger.contracts["ShareLedger"]
    return int(env.ledger.chain.call(share.functions.nonces(party.address)))


@dataclass(frozen=True)
class Snapshot:
    block: int
    nonce: int
    resources: int
    versions: int


def snapshot(env: Env) -> Snapshot:
    with env.ledger.store.read() as session:
        resources = session.scalar(select(func.count()).select_from(Resource)) or 0
        versions = session.scalar(select(func.count()).select_from(ResourceVersion)) or 0
    return Snapshot(env.ledger.chain.block_number(), nonce(env, env.minzheng), resources, versions)


def refused(
    env: Env, caller: Party, specs: Sequence[ResourceSpec], error: type[LedgerError], code: str
) -> LedgerError:
    """``create_many`` must refuse with exactly ``code`` and leave the chain and the store as they were."""
    before = snapshot(env)
    with pytest.raises(error) as info:
        env.ledger.catalog.create_many(caller, specs, chunk=2)
    assert info.value.code == code, info.value.message
    assert snapshot(env) == before
    return info.value


# --------------------------------------------------------------------------------------------
# What is published


def test_create_many_publishes_in_chunks_what_create_publishes(env: Env) -> None:
    ledger, catalog = env.ledger, env.ledger.catalog
    specs = catalog_of(7)
    reference = catalog.create(env.minzheng, spec("GY-MZ-REF", share_type=ShareType.NONE, level=4))
    start = nonce(env, env.minzheng)
    block = ledger.chain.block_number()

    created = catalog.create_many(env.minzheng, specs, chunk=3)

    assert [r.code for r in created] == [s.code for s in specs]
    assert len({r.id for r in created}) == 7
    # 3 + 3 + 1: three transactions, three blocks, one nonce per item.
    chunks = [created[0:3], created[3:6], created[6:7]]
    assert [len({r.tx_hash for r in chunk}) for chunk in chunks] == [1, 1, 1]
    assert len({chunk[0].tx_hash for chunk in chunks}) == 3
    assert ledger.chain.block_number() == block + 3
    assert nonce(env, env.minzheng) == start + 7

    share = ledger.contracts["ShareLedger"]
    for chunk in chunks:
        tx_hash = chunk[0].tx_hash
        assert tx_hash is not None
        receipt = ledger.chain.w3.eth.get_transaction_receipt(HexStr(tx_hash))
        assert receipt["status"] == 1
        assert receipt["gasUsed"] <= 0.8 * (BULK_BASE_GAS + BULK_ITEM_GAS * len(chunk)), receipt["gasUsed"]
        events = share.events.ResourceRegistered().process_receipt(receipt, errors=DISCARD)
        assert [bytes(e["args"]["resourceId"]) for e in events] == [resource_id_bytes32(r.id) for r in chunk]
        assert {e["args"]["provider"] for e in events} == {env.minzheng.address}

    # The rows: what create writes, differing from the reference item only where the spec, the id,
    # the transaction or the time differ.
    for s, row in zip(specs, created, strict=True):
        stored = catalog.get(row.id)
        assert columns(stored, *TIMES) == columns(row, *TIMES)
        assert columns(stored, *PER_ITEM, *TIMES) == columns(reference, *PER_ITEM, *TIMES)
        metadata = s.metadata()
        digest = keccak(canonical_json(metadata))
        assert columns(stored, "id", "created_at", "updated_at", "tx_hash") == {
            "code": s.code,
            "provider_id": env.minzheng.id,
            "name": s.name,
            "version": 1,
            "share_type": s.share_type,
            "open_type": s.open_type,
            "level": s.level,
            "metadata_json": json.dumps(metadata, ensure_ascii=False),
            "metadata_hash": digest,
            "pending_json": None,
        }
        [version] = catalog.versions(row.id)
        assert columns(version, "id") == {
            "resource_id": row.id,
            "version": 1,
            "metadata_json": stored.metadata_json,
            "metadata_hash": digest,
            "tx_hash": stored.tx_hash,
            "created_at": stored.created_at,
        }
        # On chain: the provider, the terms and the hash of the stored metadata, version 1.
        provider, level, share_type, open_type, chain_version, _, metadata_hash = on_chain(ledger, row.id)
        assert (provider, level, share_type, open_type, chain_version, bytes(metadata_hash)) == (
            env.minzheng.address,
            s.level,
            s.share_type.chain_value,
            s.open_type.chain_value,
            1,
            digest,
        )
        rid = resource_id_bytes32(row.id)
        assert bytes(ledger.chain.call(share.functions.metadataHashAt(rid, 1))) == digest

    # In the catalog like any other item, and the single paths go on from the moved nonce.
    assert {r.id for r in catalog.find(provider=env.minzheng.id)} == {reference.id, *(r.id for r in created)}
    updated = catalog.update(env.minzheng, created[0].id, replace(specs[0], name="改名"))
    assert updated.version == 2 and on_chain(ledger, created[0].id)[4] == 2
    assert catalog.create(env.minzheng, spec("GY-MZ-AFTER")).version == 1


def test_a_batch_of_one_and_a_batch_in_one_chunk(env: Env) -> None:
    catalog = env.ledger.catalog
    [single] = catalog.create_many(env.gongan, [spec("GY-GA-001")])
    assert single.version == 1 and on_chain(env.ledger, single.id)[4] == 1
    many = catalog.create_many(env.gongan, catalog_of(5, "GY-GA-B"))
    assert len({r.tx_hash for r in many}) == 1  # the default chunk holds them all


# --------------------------------------------------------------------------------------------
# Refusals: decided before anything is sent


def test_only_a_department_publishes(env: Env) -> None:
    for caller in (env.enterprise, env.registrar):
        refused(env, caller, catalog_of(3), Forbidden, "forbidden_role")


def test_a_contract_without_multicall_is_refused_before_anything_is_sent(env: Env) -> None:
    """A ledger deployed before bulk publishing: its ShareLedger has no multicall. Stood in for by a
    real deployed contract without it (the Anchor), read the same way."""
    catalog = env.ledger.catalog
    catalog.contract = env.ledger.contracts["Anchor"]
    error = refused(env, env.minzheng, catalog_of(2), Conflict, "bulk_unsupported")
    assert "no multicall" in error.message


def test_an_empty_batch_is_refused(env: Env) -> None:
    refused(env, env.minzheng, [], InvalidInput, "empty_batch")


def test_a_code_twice_in_the_batch_is_refused(env: Env) -> None:
    specs = [*catalog_of(4), spec("GY-MZ-001", name="同一编码")]
    error = refused(env, env.minzheng, specs, InvalidInput, "duplicate_resource_code")
    assert error.details["index"] == 4 and "GY-MZ-001" in error.message


def test_a_code_of_another_department_is_refused(env: Env) -> None:
    env.ledger.catalog.create(env.gongan, spec("GY-GA-TAKEN"))
    specs = [*catalog_of(4), spec("GY-GA-TAKEN")]
    refused(env, env.minzheng, specs, Conflict, "resource_code_taken")


def test_a_code_the_caller_already_registered_is_refused(env: Env) -> None:
    env.ledger.catalog.create(env.minzheng, spec("GY-MZ-OLD"))
    specs = [*catalog_of(4), spec("GY-MZ-OLD")]
    refused(env, env.minzheng, specs, Conflict, "resource_exists")


@pytest.mark.parametrize(
    ("bad", "code"),
    [
        (spec("GY-MZ-BAD", level=5), "invalid_level"),
        (spec("GY-MZ-BAD", level=0), "invalid_level"),
        (spec("GY-MZ-BAD", fields=[FieldSpec("name", sensitive=True)]), "invalid_field"),
        (spec("GY-MZ-BAD", fields=[FieldSpec("district", masking=MaskingRule.NAME)]), "invalid_field"),
        (spec("GY-MZ-BAD", fields=[FieldSpec("district"), FieldSpec("district")]), "duplicate_field"),
    ],
    ids=["level_5", "level_0", "sensitive_unmasked", "masked_not_sensitive", "duplicate_field"],
)
def test_an_invalid_item_is_refused(env: Env, bad: ResourceSpec, code: str) -> None:
    error = refused(env, env.minzheng, [*catalog_of(4), bad], InvalidInput, code)
    assert error.details["index"] == 4 and "GY-MZ-BAD" in error.message


def test_a_department_that_keeps_its_own_key_is_refused(env: Env) -> None:
    """Bulk publishing signs custodially; a client-custody party signs each item itself with create."""
    refused(env, env.own_key, catalog_of(3), Conflict, "client_custody")


# --------------------------------------------------------------------------------------------
# The chain's side: nonce races and refusals


def _before_chunk(env: Env, monkeypatch: pytest.MonkeyPatch, action: Callable[[int], None]) -> None:
    """Run ``action(k)`` just before the k-th chunk is relayed (k from 0), as a concurrent request would."""
    consent = env.ledger.catalog.consent
    relay_many = consent.relay_many
    calls = [0]

    def interleaved(*args: Any, **kwargs: Any) -> RelayedMany:
        action(calls[0])
        calls[0] += 1
        return relay_many(*args, **kwargs)

    monkeypatch.setattr(consent, "relay_many", interleaved)


def test_a_single_create_landing_between_chunks_is_survived(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A concurrent single signature spends the nonce the next chunk was counted with: the chunk's
    eth_call reverts InvalidAccountNonce, and it is signed again once with fresh nonces."""
    catalog = env.ledger.catalog
    concurrent: list[Resource] = []

    def single_create(k: int) -> None:
        if k == 1:
            concurrent.append(catalog.create(env.minzheng, spec("GY-MZ-CONCURRENT")))

    _before_chunk(env, monkeypatch, single_create)
    start = nonce(env, env.minzheng)
    created = catalog.create_many(env.minzheng, catalog_of(4), chunk=2)
    assert nonce(env, env.minzheng) == start + 5
    assert [on_chain(env.ledger, r.id)[4] for r in [*created, *concurrent]] == [1] * 5
    assert len({r.tx_hash for r in created}) == 2


def test_a_nonce_race_lost_every_time_is_reported(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    catalog = env.ledger.catalog
    catalog.create(env.minzheng, spec("GY-MZ-FIRST"))  # the nonce is 1 now; the reader below says 0
    monkeypatch.setattr(catalog.consent, "nonce", lambda address: 0)
    error = refused(env, env.minzheng, catalog_of(3), StaleNonce, "stale_nonce")
    assert error.details["published"] == 0


def test_a_chain_refusal_of_a_later_chunk_keeps_the_earlier_ones(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not atomic across chunks: a department suspended while its import runs has the first chunk
    published; the second is refused by the contract (NotDepartment) in its eth_call, costs no
    transaction, and the error counts what was published."""
    ledger = env.ledger

    def suspend(k: int) -> None:
        if k == 1:
            ledger.parties.set_suspended(env.registrar, env.minzheng.id, True, "审计")

    _before_chunk(env, monkeypatch, suspend)
    specs = catalog_of(4)
    with pytest.raises(ContractRevert) as info:
        ledger.catalog.create_many(env.minzheng, specs, chunk=2)
    assert info.value.code == "not_department" and info.value.details["published"] == 2
    published = ledger.catalog.find(provider=env.minzheng.id)
    assert [r.code for r in published] == [s.code for s in specs[:2]]
    assert nonce(env, env.minzheng) == 2
    with ledger.store.read() as session:
        codes = set(session.scalars(select(Resource.code)))
    assert codes == {s.code for s in specs[:2]}
