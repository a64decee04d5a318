"""Proof bundles (DESIGN.md "Proof bundle v1"): everything a third party needs to check one access
with nothing but a chain endpoint — the entry, its inclusion proof up to an anchored root, and where
that root is anchored.

Verification (:func:`verify_bundle`) recomputes the leaf hash from the entry (RFC 8785 + RFC 9162
§2.1), checks the inclusion proof up to ``root``, and asks the anchor contract for
``rootAt(tree_size)``; any mismatch raises :class:`VerificationError` naming what failed.

Everything else the bundle asserts is checked too, so that no part of a bundle can be altered and
still pass: the anchoring transaction (``anchor.tx_hash`` in ``anchor.block_number`` emitted
``Anchored(tree_size, root)`` from the anchor contract), the per-access record when present
(``leaf_record``: ``leafAt(leaf_index)`` is the leaf, and its transaction emitted ``LeafRecorded``
for it), and the checkpoint note when present (its size and root are the bundle's; its signature
needs the operator's verifier key, see :func:`ledger.log.note.verify_note`). ``leaf_record`` and
``checkpoint_note`` are optional evidence: absent or null, they are not checked. Finally the
``grant`` section — the share grant or open contract the access was made under — is checked
against the chain (:mod:`ledger.log.authority`): proof of authorized use, not only of logging.
A bundle whose entry claims no authorization passes on inclusion and anchor alone;
:func:`ledger.log.authority.describe` says so, and callers must show it.

The bundle's shape is checked before anything is read from the chain: every malformed shape is
``malformed_bundle`` (never a bare ``KeyError``/``TypeError``), and nesting deeper than
:data:`MAX_BUNDLE_DEPTH` is refused before anything recurses into it. An ``anchor.contract`` that is
not an anchor contract on the chain is ``anchor_contract_mismatch``; ``chain_unreachable`` means the
endpoint could not be read at all.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from typing import Any, TypeVar

from eth_typing import HexStr
from eth_utils.crypto import keccak
from web3 import Web3
from web3.exceptions import BadFunctionCallOutput, ContractLogicError, Web3Exception

from ledger.canonical import canonical_json
from ledger.errors import InvalidInput, VerificationError
from ledger.log import merkle
from ledger.log.authority import check_authority, check_section_shape
from ledger.log.note import parse_checkpoint

T = TypeVar("T")
_HEX32 = re.compile(r"0x[0-9a-fA-F]{64}")
MAX_ENTRY_DEPTH = 32
"""An access event is a flat object; deeper nesting is refused before canonicalisation recurses."""
MAX_BUNDLE_DEPTH = 64
"""A bundle's deepest part (an EIP-712 document in the grant section) is ~6 levels; the API's own
limit for request bodies (``api.errors.MAX_JSON_DEPTH``) is the same figure."""

ANCHORED_TOPIC = keccak(text="Anchored(uint64,bytes32,uint64)")
LEAF_RECORDED_TOPIC = keccak(text="LeafRecorded(uint64,bytes32,uint64)")

ANCHOR_VIEW_ABI: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": "rootAt",
        "stateMutability": "view",
        "inputs": [{"name": "treeSize", "type": "uint64"}],
        "outputs": [{"name": "root", "type": "bytes32"}],
    },
    {
        "type": "function",
        "name": "leafAt",
        "stateMutability": "view",
        "inputs": [{"name": "index", "type": "uint64"}],
        "outputs": [{"name": "leafHash", "type": "bytes32"}],
    },
]


def _hex32(value: Any, what: str) -> bytes:
    if not isinstance(value, str) or not _HEX32.fullmatch(value):
        raise VerificationError(f"{what} must be 0x + 64 hex digits", code="malformed_bundle")
    return bytes.fromhex(value[2:])


def _int(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise VerificationError(f"{what} must be a non-negative integer", code="malformed_bundle")
    return value


def _depth_within(value: Any, limit: int) -> bool:
    """Is ``value`` nested at most ``limit`` deep? Iterative, so hostile depth cannot recurse."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return False
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return True


def _leaf(entry: Any) -> bytes:
    if not isinstance(entry, dict):
        raise VerificationError("entry must be a JSON object", code="malformed_bundle")
    if not _depth_within(entry, MAX_ENTRY_DEPTH):
        raise VerificationError(f"entry is nested deeper than {MAX_ENTRY_DEPTH}", code="malformed_bundle")
    try:
        return merkle.leaf_hash(canonical_json(entry))
    except InvalidInput as exc:
        raise VerificationError(
            f"entry cannot be canonicalised: {exc.message}", code="malformed_bundle"
        ) from exc


def check_proof(bundle: Any) -> tuple[int, bytes]:
    """Check the bundle's self-contained part; return (tree_size, root) to look up on chain."""
    size, root, _ = _self_contained(bundle)
    return size, root


def _self_contained(bundle: Any) -> tuple[int, bytes, bytes]:
    """(tree_size, root, leaf hash) once the entry's inclusion proof up to ``root`` checks out."""
    if not isinstance(bundle, dict) or type(bundle.get("version")) is not int or bundle["version"] != 1:
        raise VerificationError("not a version 1 proof bundle", code="malformed_bundle")
    if not _depth_within(bundle, MAX_BUNDLE_DEPTH):
        raise VerificationError(
            f"the bundle is nested deeper than {MAX_BUNDLE_DEPTH}", code="malformed_bundle"
        )
    leaf = _leaf(bundle.get("entry"))
    index = _int(bundle.get("leaf_index"), "leaf_index")
    size = _int(bundle.get("tree_size"), "tree_size")
    proof_raw = bundle.get("inclusion_proof")
    if not isinstance(proof_raw, list) or len(proof_raw) > 64:
        raise VerificationError("inclusion_proof must be a list of hashes", code="malformed_bundle")
    proof = [_hex32(p, "inclusion_proof element") for p in proof_raw]
    root = _hex32(bundle.get("root"), "root")
    merkle.verify_inclusion(leaf, index, size, proof, root)
    return size, root, leaf


def _check_note(note: Any, size: int, root: bytes) -> None:
    """Optional evidence: the C2SP checkpoint note must be of this very (size, root)."""
    if note is None:
        return
    if not isinstance(note, str):
        raise VerificationError("checkpoint_note must be a signed note (text)", code="malformed_bundle")
    checkpoint = parse_checkpoint(note)
    if checkpoint.size != size or checkpoint.root != root:
        raise VerificationError(
            f"the checkpoint note is of size {checkpoint.size} root 0x{checkpoint.root.hex()}, "
            f"not of the bundle's size {size} root 0x{root.hex()}",
            code="note_mismatch",
        )


def _tx_ref(value: Any, what: str) -> tuple[bytes, int]:
    if not isinstance(value, dict):
        raise VerificationError(f"{what} must be an object", code="malformed_bundle")
    return _hex32(value.get("tx_hash"), f"{what}.tx_hash"), _int(
        value.get("block_number"), f"{what}.block_number"
    )


def _emitted(
    w3: Web3,
    ref: tuple[bytes, int],
    contract: str,
    topics: list[bytes],
    data: bytes,
    *,
    what: str,
    code: str,
) -> None:
    """Did transaction ``ref[0]``, mined in block ``ref[1]``, succeed and emit from ``contract`` a log
    whose topics are ``topics`` and whose data starts with ``data``? Raise VerificationError if not."""
    tx_hash, block_number = ref
    try:
        receipt = w3.eth.get_transaction_receipt(HexStr("0x" + tx_hash.hex()))
    except (Web3Exception, OSError, ValueError) as exc:
        raise VerificationError(
            f"{what} transaction 0x{tx_hash.hex()} is not on this chain", code=code
        ) from exc
    if int(receipt["blockNumber"]) != block_number or int(receipt["status"]) != 1:
        raise VerificationError(
            f"{what} transaction 0x{tx_hash.hex()} is in block {receipt['blockNumber']}, not {block_number}",
            code=code,
        )
    for log in receipt["logs"]:
        if (
            str(log["address"]).lower() == contract.lower()
            and [bytes(t) for t in log["topics"]] == topics
            and bytes(log["data"]).startswith(data)
        ):
            return
    raise VerificationError(
        f"{what} transaction 0x{tx_hash.hex()} did not record this bundle's claim", code=code
    )


def _read(rpc_url: str, call: Callable[[], T]) -> T:
    """``call()`` against the chain, its failures as ``chain_unreachable`` — except a view call that
    reverts or returns nothing decodable: the endpoint answered, the contract is not the anchor."""
    try:
        return call()
    except (ContractLogicError, BadFunctionCallOutput) as exc:
        raise VerificationError(
            f"the contract at anchor.contract does not answer as the anchor contract: {exc}",
            code="anchor_contract_mismatch",
        ) from exc
    except (Web3Exception, OSError, ValueError) as exc:
        raise VerificationError(
            f"cannot read the chain at {rpc_url}: {exc}", code="chain_unreachable"
        ) from exc


def _anchor_contract(rpc_url: str, contract_address: str, chain_id: int, timeout: float) -> tuple[Web3, Any]:
    """A connection to ``rpc_url`` checked to serve ``chain_id``, and the anchor contract's views."""
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))
    if not Web3.is_address(contract_address):
        raise VerificationError(f"{contract_address!r} is not an address", code="bad_anchor_address")
    actual_chain = _read(rpc_url, lambda: int(w3.eth.chain_id))
    if actual_chain != chain_id:
        raise VerificationError(
            f"the endpoint serves chain {actual_chain}, the log was anchored on chain {chain_id}",
            code="chain_id_mismatch",
        )
    address = Web3.to_checksum_address(contract_address)
    if not _read(rpc_url, lambda: bytes(w3.eth.get_code(address))):
        raise VerificationError(
            f"there is no contract at anchor.contract {address} on chain {chain_id}",
            code="anchor_contract_mismatch",
        )
    contract = w3.eth.contract(address=address, abi=ANCHOR_VIEW_ABI)
    return w3, contract


def anchored_root(
    rpc_url: str,
    contract_address: str,
    chain_id: int,
    size: int,
    *,
    timeout: float = 30.0,
    reader: tuple[Web3, Any] | None = None,
) -> bytes:
    """``rootAt(size)`` of the anchor contract at ``contract_address`` on chain ``chain_id``
    (checked), through ``rpc_url``; raises ``root_not_anchored`` if the chain holds none."""
    _, contract = reader or _anchor_contract(rpc_url, contract_address, chain_id, timeout)
    on_chain = bytes(_read(rpc_url, contract.functions.rootAt(size).call))
    if on_chain == bytes(32):
        raise VerificationError(f"no root is anchored for tree size {size}", code="root_not_anchored")
    return on_chain


def check_trusted(bundle: Any, trusted: Collection[str]) -> None:
    """Every contract the bundle names (``anchor.contract``, ``grant.contract``) is one the verifier
    trusts. Without this a bundle could point at look-alike contracts someone deployed on the same
    chain, whose ``rootAt`` and ``grantOf`` say whatever its author wants; a verifier that knows the
    log's real addresses (docs/deploy.md publishes them) pins them with ``--trust``."""
    allowed = {a.lower() for a in trusted}
    named = [("anchor.contract", (bundle.get("anchor") or {}).get("contract"))]
    if isinstance(bundle.get("grant"), dict):
        named.append(("grant.contract", bundle["grant"].get("contract")))
    for where, value in named:
        if not isinstance(value, str) or value.lower() not in allowed:
            raise VerificationError(
                f"{where} {value} is not a contract you trust (--trust)", code="untrusted_contract"
            )


def verify_bundle(
    bundle: Any, rpc_url: str, *, timeout: float = 30.0, trusted: Collection[str] | None = None
) -> None:
    """Verify a proof bundle against a chain endpoint. Returns None or raises VerificationError.
    ``trusted``: if given, the only contract addresses the bundle may name (:func:`check_trusted`)."""
    size, root, leaf = _self_contained(bundle)
    index = bundle["leaf_index"]
    anchor = bundle.get("anchor")
    if not isinstance(anchor, dict):
        raise VerificationError("anchor must be an object", code="malformed_bundle")
    contract_address = anchor.get("contract")
    if not isinstance(contract_address, str) or not Web3.is_address(contract_address):
        raise VerificationError("anchor.contract must be an address", code="malformed_bundle")
    chain_id = _int(anchor.get("chain_id"), "anchor.chain_id")
    anchor_ref = _tx_ref(anchor, "anchor")
    leaf_record = bundle.get("leaf_record")
    record = None if leaf_record is None else _tx_ref(leaf_record, "leaf_record")
    if bundle.get("grant") is not None:
        check_section_shape(bundle["grant"])
    if trusted is not None:
        check_trusted(bundle, trusted)
    w3, contract = _anchor_contract(rpc_url, contract_address, chain_id, timeout)
    on_chain = anchored_root(
        rpc_url, contract_address, chain_id, size, timeout=timeout, reader=(w3, contract)
    )
    recorded_leaf = (
        bytes(_read(rpc_url, contract.functions.leafAt(index).call)) if record is not None else None
    )
    if on_chain != root:
        raise VerificationError(
            f"the anchored root for size {size} is 0x{on_chain.hex()}, the bundle claims 0x{root.hex()}",
            code="anchored_root_mismatch",
            expected=on_chain,
            calculated=root,
        )
    _emitted(
        w3,
        anchor_ref,
        contract_address,
        [ANCHORED_TOPIC],
        size.to_bytes(32, "big") + root,
        what="the anchoring",
        code="anchor_tx_mismatch",
    )
    if record is not None:
        if recorded_leaf != leaf:
            raise VerificationError(
                f"the bundle claims a per-access record of leaf {index} but the chain holds "
                f"0x{(recorded_leaf or b'').hex()}",
                code="leaf_record_mismatch",
            )
        _emitted(
            w3,
            record,
            contract_address,
            [LEAF_RECORDED_TOPIC, index.to_bytes(32, "big")],
            leaf,
            what="the per-access record",
            code="leaf_record_mismatch",
        )
    _check_note(bundle.get("checkpoint_note"), size, root)
    check_authority(bundle, rpc_url, timeout=timeout)
