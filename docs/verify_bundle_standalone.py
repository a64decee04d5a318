"""Check a sharetrail proof bundle with nothing of sharetrail's: web3.py (and eth-account, which
web3.py installs) and hashlib. A third party — a customer, an auditor, a court — runs

    python verify_bundle_standalone.py bundle.json http://chain-endpoint:8545

and gets "OK" or the first thing that is wrong. What it checks (DESIGN.md "Proof bundle v1"):

1. the leaf hash, recomputed from the entry: SHA-256(0x00 ‖ RFC 8785 JSON of the entry);
2. the RFC 9162 §2.1.3.2 inclusion proof from that leaf up to the bundle's root;
3. the anchor contract's ``rootAt(tree_size)`` on the chain equals that root (and the chain id);
4. for an access under a share grant: the grant is on chain (``grantOf``), its scope hash is the
   keccak of the bundle's scope, the request's EIP-712 signature recovers to the grantee and the
   decision's to the resource's provider, and the access time lies in the grant's validity window;
5. for an access under an open contract (契约式开放 / 依申请开放): the contract is on chain
   (``contractOf``), the proposal (or application) shown hashes to its ``contractHash`` and was
   signed by the operator (the enterprise), every acceptance (review) recovers to a party of the
   contract and together they are exactly ``signersOf``, the scope and terms hashes are the chain's,
   and ``checkAuthorized(contract, enterprise, resource, keccak(purpose), time)`` passes — effective
   at the access's chain time, not suspended or terminated, purpose and resource in the contract.

RFC 8785 canonical JSON equals ``json.dumps(sort_keys=True, separators=(",", ":"),
ensure_ascii=False)`` for what sharetrail entries hold (strings, safe integers, booleans, null, ASCII
keys, no floats); this script refuses an entry with anything else rather than guess.
"""

from __future__ import annotations

import hashlib
import json
import sys
from datetime import datetime
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from web3 import Web3

ANCHOR_ABI = [
    {
        "type": "function",
        "name": "rootAt",
        "stateMutability": "view",
        "inputs": [{"name": "treeSize", "type": "uint64"}],
        "outputs": [{"name": "root", "type": "bytes32"}],
    }
]
GRANT_TUPLE = [
    {"name": n, "type": t}
    for n, t in [
        ("resourceId", "bytes32"),
        ("grantee", "address"),
        ("purposeHash", "bytes32"),
        ("scopeHash", "bytes32"),
        ("validFrom", "uint64"),
        ("validUntil", "uint64"),
        ("maxAccesses", "uint32"),
        ("status", "uint8"),
    ]
]
RESOURCE_TUPLE = [
    {"name": n, "type": t}
    for n, t in [
        ("provider", "address"),
        ("level", "uint8"),
        ("shareType", "uint8"),
        ("openType", "uint8"),
        ("version", "uint32"),
        ("updatedAt", "uint64"),
        ("metadataHash", "bytes32"),
    ]
]
SHARE_ABI = [
    {
        "type": "function",
        "name": "grantOf",
        "stateMutability": "view",
        "inputs": [{"name": "grantId", "type": "bytes32"}],
        "outputs": [{"name": "g", "type": "tuple", "components": GRANT_TUPLE}],
    },
    {
        "type": "function",
        "name": "resourceOf",
        "stateMutability": "view",
        "inputs": [{"name": "resourceId", "type": "bytes32"}],
        "outputs": [{"name": "r", "type": "tuple", "components": RESOURCE_TUPLE}],
    },
]


RECORD_TUPLE = [
    {"name": n, "type": t}
    for n, t in [
        ("kind", "uint8"),
        ("status", "uint8"),
        ("required", "uint8"),
        ("signedCount", "uint8"),
        ("obligations", "uint16"),
        ("operator", "address"),
        ("enterprise", "address"),
        ("validFrom", "uint64"),
        ("validUntil", "uint64"),
        ("proposedAt", "uint64"),
        ("effectiveAt", "uint64"),
        ("terminatedAt", "uint64"),
        ("contractHash", "bytes32"),
        ("scopeHash", "bytes32"),
        ("termsHash", "bytes32"),
    ]
]
OPEN_ABI = [
    {
        "type": "function",
        "name": "contractOf",
        "stateMutability": "view",
        "inputs": [{"name": "contractId", "type": "bytes32"}],
        "outputs": [{"name": "r", "type": "tuple", "components": RECORD_TUPLE}],
    },
    {
        "type": "function",
        "name": "signersOf",
        "stateMutability": "view",
        "inputs": [{"name": "contractId", "type": "bytes32"}],
        "outputs": [{"name": "", "type": "address[]"}],
    },
    {
        "type": "function",
        "name": "checkAuthorized",
        "stateMutability": "view",
        "inputs": [
            {"name": "contractId", "type": "bytes32"},
            {"name": "accessor", "type": "address"},
            {"name": "resourceId", "type": "bytes32"},
            {"name": "purpose", "type": "bytes32"},
            {"name": "at", "type": "uint64"},
        ],
        "outputs": [],
    },
]
# Why checkAuthorized refuses, by the 4-byte selector of each custom error of OpenContracts.
REFUSALS = {
    Web3.keccak(text=sig)[:4]: sig.split("(")[0]
    for sig in (
        "UnknownContract(bytes32)",
        "NotContractEnterprise(address,address)",
        "ResourceNotInContract(bytes32,bytes32)",
        "PurposeNotInContract(bytes32,bytes32)",
        "ContractNotEffective(bytes32,uint64)",
        "ContractSuspended(bytes32,uint64)",
        "ContractTerminated(bytes32,uint64)",
        "ContractNotYetValid(bytes32,uint64)",
        "ContractExpired(bytes32,uint64)",
        "NegativeListed(bytes32)",
    )
}


class Invalid(Exception):
    pass


def canonical(obj: Any) -> bytes:
    def plain(v: Any) -> bool:
        if v is None or isinstance(v, (bool, str)):
            return True
        if isinstance(v, int):
            return abs(v) <= 2**53 - 1
        if isinstance(v, list):
            return all(plain(x) for x in v)
        if isinstance(v, dict):
            return all(isinstance(k, str) and k.isascii() and plain(x) for k, x in v.items())
        return False

    if not plain(obj):
        raise Invalid("the entry holds values this small verifier does not canonicalise (floats?)")
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def verify_inclusion(leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes) -> None:
    """RFC 9162 §2.1.3.2."""
    if not 0 <= index < size:
        raise Invalid("leaf index outside the tree")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise Invalid("inclusion proof too long")
        if fn & 1 or fn == sn:
            r = hashlib.sha256(b"\x01" + p + r).digest()
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = hashlib.sha256(b"\x01" + r + p).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0 or r != root:
        raise Invalid("the inclusion proof does not lead to the bundle's root")


def b32(value: str) -> bytes:
    raw = bytes.fromhex(value[2:]) if isinstance(value, str) and value.startswith("0x") else b""
    if len(raw) != 32:
        raise Invalid(f"not a 32-byte hex value: {value!r}")
    return raw


def recover(typed_data: dict[str, Any], signature: str) -> str:
    message = encode_typed_data(full_message=typed_data)
    return str(Account.recover_message(message, signature=signature))


def struct_hash(typed_data: dict[str, Any]) -> bytes:
    return bytes(encode_typed_data(full_message=typed_data).body)


def resource_b32(resource_id: str) -> bytes:
    """sharetrail's resource ids are 32 hex digits; on chain they are left-padded to 32 bytes."""
    return bytes(16) + bytes.fromhex(resource_id)


def verify_contract(w3: Web3, section: dict[str, Any], entry: dict[str, Any]) -> None:
    if entry.get("contract") != section["contract_id"]:
        raise Invalid("the bundle's contract is not the one the entry names")
    oc = w3.eth.contract(address=Web3.to_checksum_address(section["contract"]), abi=OPEN_ABI)
    cid = b32(section["contract_id"])
    rec = oc.functions.contractOf(cid).call()
    kind, status, operator, enterprise, contract_hash = rec[0], rec[1], rec[5], rec[6], bytes(rec[12])
    if status == 0:
        raise Invalid("no such contract on chain")
    for doc in [section["proposal"], *section["signatures"]]:
        domain = doc["typed_data"]["domain"]
        if (
            domain["chainId"] != section["chain_id"]
            or domain["verifyingContract"].lower() != section["contract"].lower()
        ):
            raise Invalid("a signature was made for another chain or contract")
    proposer = recover(section["proposal"]["typed_data"], section["proposal"]["signature"])
    if proposer.lower() != (operator if kind == 0 else enterprise).lower():
        raise Invalid("the proposal was not signed by the contract's operator (application: its enterprise)")
    if struct_hash(section["proposal"]["typed_data"]) != contract_hash:
        raise Invalid("the proposal shown is not the contract on chain")
    signers = {a.lower() for a in oc.functions.signersOf(cid).call()}
    needed = signers if kind == 0 else signers - {enterprise.lower()}
    seen = set()
    for item in section["signatures"]:
        message = item["typed_data"]["message"]
        who = recover(item["typed_data"], item["signature"]).lower()
        if kind == 0 and (who != message["signer"].lower() or b32(message["contractHash"]) != contract_hash):
            raise Invalid("an acceptance was not signed by the party it names, or is of another contract")
        if kind == 1 and (b32(message["applicationId"]) != cid or message["approve"] is not True):
            raise Invalid("a review is of another application or did not approve")
        seen.add(who)
    if seen != needed:
        raise Invalid("the signatures shown are not exactly the contract's parties")
    if Web3.keccak(canonical(section["scope"])) != bytes(rec[13]) or b32(section["terms_hash"]) != bytes(
        rec[14]
    ):
        raise Invalid("the scope or the terms hash is not the contract's")
    chain_time = entry.get("chain_time")
    at = chain_time if isinstance(chain_time, int) else access_time(entry)
    try:
        oc.functions.checkAuthorized(
            cid, enterprise, resource_b32(entry["resource"]), Web3.keccak(text=entry["purpose"]), at
        ).call()
    except Exception as exc:  # web3 raises ContractCustomError (or a provider-specific error) with the data
        data = str(getattr(exc, "data", "") or exc)
        start = data.find("0x")
        why = REFUSALS.get(bytes.fromhex(data[start + 2 : start + 10])) if start >= 0 else None
        raise Invalid(f"the contract did not authorize this access: {why or data}") from exc


def access_time(entry: dict[str, Any]) -> int:
    return int(datetime.fromisoformat(entry["time"].replace("Z", "+00:00")).timestamp())


def verify(bundle: dict[str, Any], rpc_url: str) -> None:
    entry = bundle["entry"]
    leaf = hashlib.sha256(b"\x00" + canonical(entry)).digest()
    root = b32(bundle["root"])
    verify_inclusion(
        leaf, bundle["leaf_index"], bundle["tree_size"], [b32(p) for p in bundle["inclusion_proof"]], root
    )
    w3 = Web3(Web3.HTTPProvider(rpc_url))
    anchor = bundle["anchor"]
    if w3.eth.chain_id != anchor["chain_id"]:
        raise Invalid(f"the endpoint is chain {w3.eth.chain_id}, the bundle names {anchor['chain_id']}")
    contract = w3.eth.contract(address=Web3.to_checksum_address(anchor["contract"]), abi=ANCHOR_ABI)
    if bytes(contract.functions.rootAt(bundle["tree_size"]).call()) != root:
        raise Invalid("the chain does not hold this root for this tree size")
    grant = bundle.get("grant")
    if grant and grant.get("type") == "open_contract":
        if grant["chain_id"] != anchor["chain_id"]:
            raise Invalid("the contract lives on another chain")
        verify_contract(w3, grant, entry)
    if grant and grant.get("type") == "share_grant":
        if grant["chain_id"] != anchor["chain_id"]:
            raise Invalid("the grant lives on another chain")
        if entry.get("grant") != grant["grant_id"]:
            raise Invalid("the bundle's grant is not the one the entry names")
        share = w3.eth.contract(address=Web3.to_checksum_address(grant["contract"]), abi=SHARE_ABI)
        g = share.functions.grantOf(b32(grant["grant_id"])).call()
        resource_id, grantee, _purpose, scope_hash, valid_from, valid_until, _cap, status = g
        if status == 0:
            raise Invalid("no such grant on chain")
        if Web3.keccak(canonical(grant["scope"])) != bytes(scope_hash):
            raise Invalid("the bundle's scope does not hash to the grant's on-chain scope hash")
        request = grant["request"]
        if recover(request["typed_data"], request["signature"]).lower() != grantee.lower():
            raise Invalid("the request was not signed by the grantee")
        decision = grant.get("decision")
        if decision:  # conditional resources; unconditional ones are granted by the contract itself
            provider = share.functions.resourceOf(bytes(resource_id)).call()[0]
            if recover(decision["typed_data"], decision["signature"]).lower() != provider.lower():
                raise Invalid("the decision was not signed by the resource's provider")
        when = access_time(entry)
        if not valid_from <= when < valid_until:
            raise Invalid("the access lies outside the grant's validity window")


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: verify_bundle_standalone.py BUNDLE.json RPC_URL", file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as fh:
        bundle = json.load(fh)
    try:
        verify(bundle, argv[2])
    except (Invalid, KeyError, TypeError, ValueError) as exc:
        print(f"INVALID: {exc}")
        return 1
    print(f"OK: log entry {bundle['leaf_index']} is in the root anchored for size {bundle['tree_size']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
