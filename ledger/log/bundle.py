"""Proof bundles (DESIGN.md "Proof bundle v1"): everything a third party needs to check one access
with nothing but a chain endpoint — the entry, its inclusion proof up to an anchored root, and where
that root is anchored.

Verification (:func:`verify_bundle`) recomputes the leaf hash from the entry (RFC 8785 + RFC 9162
§2.1), checks the inclusion proof up to ``root``, and asks the anchor contract for
``rootAt(tree_size)``; any mismatch raises :class:`VerificationError` naming what failed.
"""

from __future__ import annotations

from typing import Any

from web3 import Web3
from web3.exceptions import Web3Exception

from ledger.canonical import canonical_json
from ledger.errors import InvalidInput, VerificationError
from ledger.log import merkle

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
    if not isinstance(value, str) or not value.startswith("0x") or len(value) != 66:
        raise VerificationError(f"{what} must be 0x + 64 hex digits", code="malformed_bundle")
    try:
        return bytes.fromhex(value[2:])
    except ValueError as exc:
        raise VerificationError(f"{what} is not hex", code="malformed_bundle") from exc


def _int(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise VerificationError(f"{what} must be a non-negative integer", code="malformed_bundle")
    return value


def check_proof(bundle: Any) -> tuple[int, bytes]:
    """Check the bundle's self-contained part; return (tree_size, root) to look up on chain."""
    if not isinstance(bundle, dict) or bundle.get("version") != 1:
        raise VerificationError("not a version 1 proof bundle", code="malformed_bundle")
    entry = bundle.get("entry")
    if not isinstance(entry, dict):
        raise VerificationError("entry must be a JSON object", code="malformed_bundle")
    index = _int(bundle.get("leaf_index"), "leaf_index")
    size = _int(bundle.get("tree_size"), "tree_size")
    proof_raw = bundle.get("inclusion_proof")
    if not isinstance(proof_raw, list) or len(proof_raw) > 64:
        raise VerificationError("inclusion_proof must be a list of hashes", code="malformed_bundle")
    proof = [_hex32(p, "inclusion_proof element") for p in proof_raw]
    root = _hex32(bundle.get("root"), "root")
    try:
        leaf = merkle.leaf_hash(canonical_json(entry))
    except InvalidInput as exc:
        raise VerificationError(
            f"entry cannot be canonicalised: {exc.message}", code="malformed_bundle"
        ) from exc
    merkle.verify_inclusion(leaf, index, size, proof, root)
    return size, root


def verify_bundle(bundle: Any, rpc_url: str, *, timeout: float = 30.0) -> None:
    """Verify a proof bundle against a chain endpoint. Returns None or raises VerificationError."""
    size, root = check_proof(bundle)
    anchor = bundle.get("anchor")
    if not isinstance(anchor, dict):
        raise VerificationError("anchor must be an object", code="malformed_bundle")
    contract_address = anchor.get("contract")
    if not isinstance(contract_address, str) or not Web3.is_address(contract_address):
        raise VerificationError("anchor.contract must be an address", code="malformed_bundle")
    chain_id = _int(anchor.get("chain_id"), "anchor.chain_id")
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))
    try:
        actual_chain = int(w3.eth.chain_id)
        if actual_chain != chain_id:
            raise VerificationError(
                f"the endpoint serves chain {actual_chain}, the bundle was anchored on chain {chain_id}",
                code="chain_id_mismatch",
            )
        contract = w3.eth.contract(address=Web3.to_checksum_address(contract_address), abi=ANCHOR_VIEW_ABI)
        on_chain = bytes(contract.functions.rootAt(size).call())
        recorded_leaf = (
            bytes(contract.functions.leafAt(bundle["leaf_index"]).call())
            if bundle.get("leaf_record")
            else None
        )
    except VerificationError:
        raise
    except (Web3Exception, OSError, ValueError) as exc:
        raise VerificationError(
            f"cannot read the anchor contract at {rpc_url}: {exc}", code="chain_unreachable"
        ) from exc
    if on_chain == bytes(32):
        raise VerificationError(f"no root is anchored for tree size {size}", code="root_not_anchored")
    if on_chain != root:
        raise VerificationError(
            f"the anchored root for size {size} is 0x{on_chain.hex()}, the bundle claims 0x{root.hex()}",
            code="anchored_root_mismatch",
            expected=on_chain,
            calculated=root,
        )
    if recorded_leaf is not None:
        leaf = merkle.leaf_hash(canonical_json(bundle["entry"]))
        if recorded_leaf != leaf:
            raise VerificationError(
                f"the bundle claims a per-access record of leaf {bundle['leaf_index']} but the chain holds "
                f"0x{recorded_leaf.hex()}",
                code="leaf_record_mismatch",
            )
