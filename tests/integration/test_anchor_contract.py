"""The Anchor contract on the real embedded chain (eth-tester on py-evm, persisted on disk).

DESIGN.md "The log": the chain accepts a new root only with an RFC 9162 §2.1.4 consistency proof
from the latest anchored one, so the anchored log can only grow. These tests drive the deployed
bytecode through :class:`ledger.chain.client.Chain` — no mock — with proofs from the naive RFC
transcription in :mod:`ledger.log._reference`, and check every custom error by its exact code.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract.contract import Contract, ContractConstructor, ContractFunction

from ledger.chain.client import Chain, Receipt
from ledger.chain.contracts import load_artifact
from ledger.errors import ContractRevert, VerificationError
from ledger.log import _reference as ref
from ledger.log.merkle import leaf_hash, verify_consistency

ABI: list[dict[str, Any]] = load_artifact("Anchor")["abi"]
BYTECODE: str = load_artifact("Anchor")["bytecode"]
OPERATOR_ROLE = Web3.keccak(text="OPERATOR")
ZERO = bytes(32)
ZERO_ADDRESS = "0x" + "00" * 20
GAS_CEILING = 200_000
LEAVES = [leaf_hash(f"access event {i}".encode()) for i in range(1000)]
SIZES = [1, 2, 3, 7, 8, 100, 1000]


@cache
def _root(size: int) -> bytes:
    """RFC 9162 §2.1.1 MTH of the first ``size`` leaves, by the naive recursion."""
    return ref.mth(LEAVES[:size])


def _proof(old: int, new: int) -> list[bytes]:
    """RFC 9162 §2.1.4.1 PROOF(old, D[new]); the first anchor (from the empty tree) takes none."""
    return [] if old == 0 else ref.consistency_proof(old, new, LEAVES)


def _flip(h: bytes) -> bytes:
    return bytes([h[0] ^ 0x01]) + h[1:]


@dataclass(frozen=True)
class Actors:
    admin: LocalAccount  # funded at genesis; deploys and holds DEFAULT_ADMIN_ROLE, not OPERATOR_ROLE
    operator: LocalAccount
    stranger: LocalAccount


def _open(path: Path, actors: Actors) -> Chain:
    chain = Chain.embedded(path, actors.admin.address)
    chain.register_errors(ABI)
    return chain


def _fund(chain: Chain, actors: Actors) -> None:
    for account in (actors.operator, actors.stranger):
        chain.send_value(actors.admin, account.address, 10**18)


def _deploy(chain: Chain, deployer: LocalAccount, admin: str, operator: str) -> Contract:
    factory = chain.w3.eth.contract(abi=ABI, bytecode=BYTECODE)
    receipt = chain.transact(factory.constructor(admin, operator), deployer)
    address = receipt.raw["contractAddress"]
    assert address is not None
    return chain.contract(str(address), ABI)


def _anchor(
    chain: Chain, contract: Contract, sender: LocalAccount, size: int, root: bytes, proof: Sequence[bytes]
) -> Receipt:
    return chain.transact(contract.functions.anchor(size, root, list(proof)), sender)


def _refused(
    chain: Chain, fn: ContractFunction | ContractConstructor, sender: LocalAccount, code: str
) -> ContractRevert:
    """Send ``fn`` and require the exact custom error; return it for its arguments."""
    with pytest.raises(ContractRevert) as info:
        chain.transact(fn, sender)
    assert info.value.code == code, info.value.message
    return info.value


def _state(chain: Chain, contract: Contract) -> tuple[tuple[int, bytes], int]:
    latest = chain.call(contract.functions.latest())
    return (int(latest[0]), bytes(latest[1])), int(chain.call(contract.functions.count()))


@pytest.fixture(scope="module")
def actors() -> Actors:
    return Actors(admin=Account.create(), operator=Account.create(), stranger=Account.create())


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory, actors: Actors) -> Iterator[Chain]:
    """One embedded chain for the module; each test deploys its own contract on it."""
    opened = _open(tmp_path_factory.mktemp("anchor") / "chain.sqlite", actors)
    _fund(opened, actors)
    yield opened
    opened.close()


@pytest.fixture
def anchor(chain: Chain, actors: Actors) -> Contract:
    return _deploy(chain, actors.admin, actors.admin.address, actors.operator.address)


@pytest.fixture
def anchored7(chain: Chain, actors: Actors, anchor: Contract) -> Contract:
    """A contract whose checkpoints are 3 then 7 (7 is not a power of two: its proofs carry a seed)."""
    _anchor(chain, anchor, actors.operator, 3, _root(3), [])
    _anchor(chain, anchor, actors.operator, 7, _root(7), _proof(3, 7))
    assert _state(chain, anchor) == ((7, _root(7)), 2)
    return anchor


# --------------------------------------------------------------------------------------------
# Happy path


def test_a_growing_log_is_anchored_checkpoint_by_checkpoint(
    chain: Chain, actors: Actors, anchor: Contract
) -> None:
    assert chain.call(anchor.functions.OPERATOR_ROLE()) == OPERATOR_ROLE
    assert _state(chain, anchor) == ((0, ZERO), 0), "before the first anchor: (0, 0x0) and no checkpoint"
    previous = 0
    for index, size in enumerate(SIZES):
        receipt = _anchor(chain, anchor, actors.operator, size, _root(size), _proof(previous, size))
        timestamp = int(chain.w3.eth.get_block(receipt.block_number)["timestamp"])

        events = anchor.events.Anchored().process_receipt(receipt.raw)
        assert len(events) == 1 and len(receipt.raw["logs"]) == 1
        assert events[0]["event"] == "Anchored" and events[0]["address"] == anchor.address
        assert dict(events[0]["args"]) == {"treeSize": size, "root": _root(size), "timestamp": timestamp}

        assert _state(chain, anchor) == ((size, _root(size)), index + 1)
        assert chain.call(anchor.functions.rootAt(size)) == _root(size)
        assert chain.call(anchor.functions.anchoredAt(size)) == [timestamp, receipt.block_number]
        assert chain.call(anchor.functions.sizeAt(index)) == size
        previous = size

    for index, size in enumerate(SIZES):  # earlier checkpoints stay readable, unchanged
        assert chain.call(anchor.functions.sizeAt(index)) == size
        assert chain.call(anchor.functions.rootAt(size)) == _root(size)
    for never in (0, 4, 5, 6, 9, 99, 101, 999, 1001, 2**64 - 1):
        assert chain.call(anchor.functions.rootAt(never)) == ZERO, never
        assert chain.call(anchor.functions.anchoredAt(never)) == [0, 0], never
    with pytest.raises(ContractRevert) as info:  # Solidity panic 0x32: array index out of bounds
        chain.call(anchor.functions.sizeAt(len(SIZES)))
    assert info.value.code == "contract_revert"
    assert info.value.details["data"] == "0x4e487b71" + (0x32).to_bytes(32, "big").hex()


# --------------------------------------------------------------------------------------------
# Every revert, by its exact custom error


@pytest.mark.parametrize("who", ["stranger", "admin"])
def test_only_the_operator_role_may_anchor(chain: Chain, actors: Actors, anchor: Contract, who: str) -> None:
    sender: LocalAccount = getattr(actors, who)
    for contract_state in ("fresh", "anchored"):
        size, proof = (1, []) if contract_state == "fresh" else (8, _proof(1, 8))
        error = _refused(
            chain,
            anchor.functions.anchor(size, _root(size), proof),
            sender,
            "access_control_unauthorized_account",
        )
        account, role = error.details["args"]
        assert (Web3.to_checksum_address(account), role) == (sender.address, OPERATOR_ROLE)
        if contract_state == "fresh":
            _anchor(chain, anchor, actors.operator, 1, _root(1), [])
    assert _state(chain, anchor) == ((1, _root(1)), 1)


def test_the_empty_tree_is_refused(chain: Chain, actors: Actors, anchor: Contract) -> None:
    _refused(chain, anchor.functions.anchor(0, _root(1), []), actors.operator, "empty_tree")
    _anchor(chain, anchor, actors.operator, 1, _root(1), [])
    _refused(chain, anchor.functions.anchor(0, _root(1), []), actors.operator, "empty_tree")
    assert _state(chain, anchor) == ((1, _root(1)), 1)


def test_the_zero_root_is_refused(chain: Chain, actors: Actors, anchor: Contract) -> None:
    _refused(chain, anchor.functions.anchor(1, ZERO, []), actors.operator, "zero_root")
    _anchor(chain, anchor, actors.operator, 1, _root(1), [])
    _refused(chain, anchor.functions.anchor(8, ZERO, _proof(1, 8)), actors.operator, "zero_root")
    assert _state(chain, anchor) == ((1, _root(1)), 1)


@pytest.mark.parametrize("smaller", [1, 3, 6])
def test_the_log_cannot_shrink(chain: Chain, actors: Actors, anchored7: Contract, smaller: int) -> None:
    fn = anchored7.functions.anchor(smaller, _root(smaller), [])
    error = _refused(chain, fn, actors.operator, "size_not_increasing")
    assert error.details["args"] == [7, smaller]
    assert _state(chain, anchored7) == ((7, _root(7)), 2)


def test_the_same_checkpoint_again_is_already_anchored(
    chain: Chain, actors: Actors, anchored7: Contract
) -> None:
    error = _refused(chain, anchored7.functions.anchor(7, _root(7), []), actors.operator, "already_anchored")
    assert error.details["args"] == [7]
    assert _state(chain, anchored7) == ((7, _root(7)), 2)


def test_another_root_for_the_same_size_is_a_conflict(
    chain: Chain, actors: Actors, anchored7: Contract
) -> None:
    forged = _flip(_root(7))
    error = _refused(chain, anchored7.functions.anchor(7, forged, []), actors.operator, "root_conflict")
    assert error.details["args"] == [7, _root(7), forged]
    assert _state(chain, anchored7) == ((7, _root(7)), 2)


def test_the_first_anchor_takes_no_proof(chain: Chain, actors: Actors, anchor: Contract) -> None:
    fn = anchor.functions.anchor(3, _root(3), [_root(1)])
    _refused(chain, fn, actors.operator, "invalid_consistency_proof")
    assert _state(chain, anchor) == ((0, ZERO), 0)


# Each variant maps (old size, honest proof from old to 100) to a (root for size 100, proof) pair that
# must be refused. 7 → 100 has a seed hash; 8 → 100 starts from root1 itself (power of two).
BadProof = Callable[[int, list[bytes]], tuple[bytes, list[bytes]]]
BAD_PROOFS: dict[str, BadProof] = {
    "first_hash_bit_flipped": lambda old, p: (_root(100), [_flip(p[0]), *p[1:]]),
    "middle_hash_bit_flipped": lambda old, p: (
        _root(100),
        [*p[: len(p) // 2], _flip(p[len(p) // 2]), *p[len(p) // 2 + 1 :]],
    ),
    "last_hash_bit_flipped": lambda old, p: (_root(100), [*p[:-1], _flip(p[-1])]),
    "truncated_at_the_end": lambda old, p: (_root(100), p[:-1]),
    "truncated_at_the_start": lambda old, p: (_root(100), p[1:]),
    "extra_hash_appended": lambda old, p: (_root(100), [*p, _root(1)]),
    "extra_hash_prepended": lambda old, p: (_root(100), [_root(1), *p]),
    "empty": lambda old, p: (_root(100), []),
    "hashes_reversed": lambda old, p: (_root(100), p[::-1]),
    "wrong_new_root": lambda old, p: (_root(99), p),
    "new_root_bit_flipped": lambda old, p: (_flip(_root(100)), p),
    "proof_to_another_new_size": lambda old, p: (_root(100), _proof(old, 99)),
    "proof_from_another_old_size": lambda old, p: (_root(100), _proof(old - 1, 100)),
}


@pytest.mark.parametrize("old", [7, 8])
@pytest.mark.parametrize("variant", sorted(BAD_PROOFS))
def test_a_bad_consistency_proof_is_refused(
    chain: Chain, actors: Actors, anchor: Contract, old: int, variant: str
) -> None:
    _anchor(chain, anchor, actors.operator, old, _root(old), [])
    honest = _proof(old, 100)
    new_root, proof = BAD_PROOFS[variant](old, honest)
    assert (new_root, proof) != (_root(100), honest), "the variant must differ from the honest proof"
    with pytest.raises(VerificationError):  # the off-chain verifier agrees that it is bad
        verify_consistency(old, 100, _root(old), new_root, proof)
    _refused(
        chain, anchor.functions.anchor(100, new_root, proof), actors.operator, "invalid_consistency_proof"
    )
    assert _state(chain, anchor) == ((old, _root(old)), 1)
    # Nothing was consumed (the revert surfaced at estimation): the honest proof still goes through.
    _anchor(chain, anchor, actors.operator, 100, _root(100), honest)
    assert _state(chain, anchor) == ((100, _root(100)), 2)


@pytest.mark.parametrize("zero", ["admin", "operator", "both"])
def test_the_constructor_refuses_the_zero_address(chain: Chain, actors: Actors, zero: str) -> None:
    admin = ZERO_ADDRESS if zero in ("admin", "both") else actors.admin.address
    operator = ZERO_ADDRESS if zero in ("operator", "both") else actors.operator.address
    factory = chain.w3.eth.contract(abi=ABI, bytecode=BYTECODE)
    error = _refused(chain, factory.constructor(admin, operator), actors.admin, "zero_address")
    assert error.details["args"] == []


# --------------------------------------------------------------------------------------------
# Persistence


def test_anchors_survive_closing_and_reopening_the_chain(tmp_path: Path, actors: Actors) -> None:
    path = tmp_path / "chain.sqlite"
    first = _open(path, actors)
    _fund(first, actors)
    contract = _deploy(first, actors.admin, actors.admin.address, actors.operator.address)
    previous = 0
    for size in (1, 3, 8):
        receipt = _anchor(first, contract, actors.operator, size, _root(size), _proof(previous, size))
        previous = size
    state = _state(first, contract)
    when = first.call(contract.functions.anchoredAt(8))
    block = first.block_number()
    assert when == [int(first.w3.eth.get_block(receipt.block_number)["timestamp"]), receipt.block_number]
    first.close()

    second = _open(path, actors)
    try:
        assert second.block_number() == block, "no block lost or re-mined"
        reopened = second.contract(contract.address, ABI)
        assert second.code_at(contract.address), "the contract's code is still there"
        assert _state(second, reopened) == state == ((8, _root(8)), 3)
        assert second.call(reopened.functions.anchoredAt(8)) == when
        assert [second.call(reopened.functions.sizeAt(i)) for i in range(3)] == [1, 3, 8]
        # The log keeps growing from where it was, and the operator's nonce continues (3 anchors sent).
        _refused(second, reopened.functions.anchor(3, _root(3), []), actors.operator, "size_not_increasing")
        receipt = _anchor(second, reopened, actors.operator, 100, _root(100), _proof(8, 100))
        assert second.w3.eth.get_transaction(receipt.raw["transactionHash"])["nonce"] == 3
        assert _state(second, reopened) == ((100, _root(100)), 4)
    finally:
        second.close()

    third = _open(path, actors)
    try:
        assert _state(third, third.contract(contract.address, ABI)) == ((100, _root(100)), 4)
    finally:
        third.close()


# --------------------------------------------------------------------------------------------
# The contract's verifier against the Python one


def test_on_chain_verify_consistency_agrees_with_the_python_verifier(chain: Chain, anchor: Contract) -> None:
    """For every size pair up to 20, the honest proof and six corruptions of it.

    The contract's ``verifyConsistency`` is defined only for ``0 < size1 < size2`` and returns
    false elsewhere (equal sizes are handled by ``anchor`` itself as AlreadyAnchored/RootConflict,
    and RFC 9162 has no proof from the empty tree); :func:`verify_consistency` accepts equal
    sizes with an empty proof and equal roots. Outside that one case the two must agree exactly.
    """
    limit = 20
    disagreements: list[tuple[int, int, str, bool, bool]] = []
    accepted_on_chain = 0
    for size1 in range(limit + 1):
        for size2 in range(limit + 1):
            root1, root2 = _root(size1), _root(size2)
            honest = ref.consistency_proof(size1, size2, LEAVES) if 0 < size1 <= size2 else []
            cases: dict[str, tuple[bytes, bytes, list[bytes]]] = {"honest": (root1, root2, honest)}
            if 0 < size1 < size2:
                cases |= {
                    "first_flipped": (root1, root2, [_flip(honest[0]), *honest[1:]]),
                    "last_flipped": (root1, root2, [*honest[:-1], _flip(honest[-1])]),
                    "truncated": (root1, root2, honest[:-1]),
                    "extended": (root1, root2, [*honest, root1]),
                    "root1_flipped": (_flip(root1), root2, honest),
                    "root2_flipped": (root1, _flip(root2), honest),
                }
            for name, (r1, r2, proof) in cases.items():
                try:
                    verify_consistency(size1, size2, r1, r2, proof)
                    python = True
                except VerificationError:
                    python = False
                on_chain = bool(chain.call(anchor.functions.verifyConsistency(size1, size2, r1, r2, proof)))
                accepted_on_chain += on_chain
                expected = python and 0 < size1 < size2
                if on_chain != expected:
                    disagreements.append((size1, size2, name, python, on_chain))
                if name == "honest" and 0 < size1 <= size2:
                    assert python, (size1, size2)  # the reference proof is always valid
    assert disagreements == []
    assert accepted_on_chain == limit * (limit - 1) // 2, "exactly the honest proofs with 0 < size1 < size2"


# --------------------------------------------------------------------------------------------
# Gas


def test_anchoring_gas_stays_bounded(
    chain: Chain,
    actors: Actors,
    anchor: Contract,
    record_testsuite_property: Callable[[str, object], None],
) -> None:
    """Gas of the first anchor and of one with a 20-hash proof, recorded as JUnit suite properties
    (``record_testsuite_property`` is the xunit2-compatible recorder; ``record_property`` warns).

    A 20-hash proof needs a tree of ~2^19 leaves, too many for the naive reference, so the proof
    hashes are arbitrary and the two roots are *read back* from them through the RFC 9162 §2.1.4.1
    SUBPROOF recursion: a consistent pair of checkpoints over subtrees whose leaves nobody knows,
    which is all the contract can ever see.
    """
    size1, size2 = 262_145, 524_288
    proof = [hashlib.sha256(f"subtree {i}".encode()).digest() for i in range(20)]
    root1, root2 = ref.roots_from_consistency_proof(size1, size2, _root(1), proof)
    verify_consistency(size1, size2, root1, root2, proof)  # raises if the construction were wrong

    first = _anchor(chain, anchor, actors.operator, size1, root1, [])
    second = _anchor(chain, anchor, actors.operator, size2, root2, proof)
    record_testsuite_property("gas_first_anchor", first.gas_used)
    record_testsuite_property("gas_anchor_20_hash_proof", second.gas_used)
    assert _state(chain, anchor) == ((size2, root2), 2)
    assert 21_000 < first.gas_used < GAS_CEILING, first.gas_used
    assert 21_000 < second.gas_used < GAS_CEILING, second.gas_used
