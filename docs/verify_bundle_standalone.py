"""Check a sharetrail proof bundle with nothing of sharetrail's: web3.py (and eth-account, which
web3.py installs) and hashlib. A third party — a customer, an auditor, a court — runs

    python verify_bundle_standalone.py bundle.json http://chain-endpoint:8545 [--trust 0x… …]

and gets what ``sharetrail verify-bundle`` prints: ``OK (<what was verified>): …`` (exit 0) or
``FAILED <code>: <the first thing that is wrong>`` (exit 1), with the same codes. The checks, in the
CLI's order (DESIGN.md "Proof bundle v1"; ledger/log/bundle.py and ledger/log/authority.py):

1. the bundle's shape (anything else is ``malformed_bundle``), then the leaf hash recomputed from the
   entry — SHA-256(0x00 ‖ RFC 8785 JSON of the entry) — and the RFC 9162 §2.1.3.2 inclusion proof
   from that leaf up to the bundle's root;
2. the chain id; a contract at ``anchor.contract`` whose ``rootAt(tree_size)`` is that root; the
   anchoring transaction emitted ``Anchored(tree_size, root)`` from it in ``anchor.block_number``;
   the optional per-access record (``leafAt``, ``LeafRecorded``) and checkpoint note (its size and
   root; its signature needs the operator's key and is not checked here);
3. for an **access** under a share grant: the grant is on chain (``grantOf``), for the entry's
   resource, its scope hash is the keccak of the bundle's scope, the request's EIP-712 signature
   recovers to the grantee and the decision's to the resource's provider, the access time lies in
   the grant's window, and — if the grant is revoked on chain — the access came before the block of
   its ``GrantRevoked`` event (``grant_revoked``);
4. for an **access** under an open contract (契约式开放 / 依申请开放): the contract is on chain
   (``contractOf``), the proposal (or application) shown hashes to its ``contractHash`` and was
   signed by the operator (the enterprise), every acceptance (review) recovers to a party of the
   contract and together they are exactly ``signersOf``, the scope and terms hashes are the chain's,
   and ``checkAuthorized(contract, enterprise, resource, keccak(purpose), time)`` passes — effective
   at the access's time, not suspended or terminated, purpose and resource in the contract;
5. in both cases, the entry's accessor is the party ``PartyRegistry`` registered at the grantee's
   (the enterprise's) address.

An access is judged at its ``chain_time`` (the chain's clock) when the entry has one, else at its
``time``. A refusal or a lifecycle event (a declaration, a request…) delivered nothing: its grant
section is not checked, and neither is an access that names no grant or contract — the OK line then
says "authorization not checked".

RFC 8785 canonical JSON equals ``json.dumps(sort_keys=True, separators=(",", ":"),
ensure_ascii=False)`` for what sharetrail entries hold (strings, safe integers, booleans, null, ASCII
keys, no floats); this script refuses an entry with anything else rather than guess.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_typing import ChecksumAddress
from web3 import Web3
from web3.exceptions import BadFunctionCallOutput, ContractLogicError, Web3Exception

T = TypeVar("T")

ANCHOR_ABI = [
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
ANCHORED_TOPIC = Web3.keccak(text="Anchored(uint64,bytes32,uint64)")
LEAF_RECORDED_TOPIC = Web3.keccak(text="LeafRecorded(uint64,bytes32,uint64)")
GRANT_REVOKED_TOPIC = Web3.keccak(text="GrantRevoked(bytes32,address,bytes32)")
GRANT_REVOKED = 2
MAX_BUNDLE_DEPTH = 64
MAX_ENTRY_DEPTH = 32
REGISTRY_VIEW = {
    "type": "function",
    "name": "registry",
    "stateMutability": "view",
    "inputs": [],
    "outputs": [{"name": "", "type": "address"}],
}
PARTY_ABI = [
    {
        "type": "function",
        "name": "partyOf",
        "stateMutability": "view",
        "inputs": [{"name": "account", "type": "address"}],
        "outputs": [
            {
                "name": "",
                "type": "tuple",
                "components": [
                    {"name": "kind", "type": "uint8"},
                    {"name": "suspended", "type": "bool"},
                    {"name": "registeredAt", "type": "uint64"},
                    {"name": "partyId", "type": "bytes32"},
                    {"name": "usccHash", "type": "bytes32"},
                ],
            }
        ],
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
    REGISTRY_VIEW,
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
        "name": "hasSigned",
        "stateMutability": "view",
        "inputs": [{"name": "contractId", "type": "bytes32"}, {"name": "account", "type": "address"}],
        "outputs": [{"name": "", "type": "bool"}],
    },
    REGISTRY_VIEW,
    *(
        {
            "type": "function",
            "name": name,
            "stateMutability": "view",
            "inputs": [{"name": "id", "type": "bytes32"}, *extra],
            "outputs": [{"name": "", "type": out}],
        }
        for name, extra, out in (
            ("resourcesOf", [], "bytes32[]"),
            ("purposesOf", [], "bytes32[]"),
            ("statusAt", [{"name": "at", "type": "uint64"}], "uint8"),
            ("listedAt", [{"name": "at", "type": "uint64"}], "bool"),
        )
    ),
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
# Why checkAuthorized refuses, by the 4-byte selector of each custom error of OpenContracts: its code
# (the error's name in snake case, as the CLI reports it).
REFUSALS = {
    bytes(Web3.keccak(text=sig)[:4]): "".join(
        "_" + c.lower() if c.isupper() else c for c in sig.split("(")[0]
    )[1:]
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
    """The bundle fails: ``code`` is the CLI's failure code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def malformed(what: str) -> Invalid:
    return Invalid("malformed_bundle", what)


# -- shape ------------------------------------------------------------------------------------------
def depth_within(value: Any, limit: int) -> bool:
    """Is ``value`` nested at most ``limit`` deep? Iterative: hostile depth cannot recurse."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                return False
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return True


def json_depth(raw: bytes) -> int:
    """Deepest ``[``/``{`` nesting of a JSON text, brackets inside strings not counted; no recursion."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def nonneg_int(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise malformed(f"{what} must be a non-negative integer")
    return value


def hex32(value: Any, what: str) -> bytes:
    if not isinstance(value, str) or len(value) != 66 or value[:2] != "0x":
        raise malformed(f"{what} must be 0x + 64 hex digits")
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise malformed(f"{what} must be 0x + 64 hex digits") from None


def b32(value: Any) -> bytes:
    """A 32-byte hex value inside a grant section (a ValueError, hence malformed_bundle, otherwise)."""
    if not isinstance(value, str) or len(value) != 66 or not value.startswith("0x"):
        raise ValueError(f"not a 32-byte hex value: {value!r}")
    return bytes.fromhex(value[2:])


def address(value: Any, what: str) -> ChecksumAddress:
    if not isinstance(value, str) or not Web3.is_address(value):
        raise malformed(f"{what} must be an address")
    return Web3.to_checksum_address(value)


def tx_ref(value: Any, what: str) -> tuple[bytes, int]:
    if not isinstance(value, dict):
        raise malformed(f"{what} must be an object")
    return hex32(value.get("tx_hash"), f"{what}.tx_hash"), nonneg_int(
        value.get("block_number"), f"{what}.block_number"
    )


def check_signed(value: Any, what: str) -> None:
    if not isinstance(value, dict):
        raise malformed(f"grant.{what} must be an object")
    document = value.get("typed_data")
    if not isinstance(document, dict):
        raise malformed(f"grant.{what}.typed_data must be an object")
    for key, kind in (("domain", dict), ("types", dict), ("message", dict), ("primaryType", str)):
        if not isinstance(document.get(key), kind):
            raise malformed(f"grant.{what}.typed_data.{key} is of the wrong type")
    if not isinstance(value.get("signature"), str):
        raise malformed(f"grant.{what}.signature must be a hex string")


def check_section_shape(section: Any) -> None:
    if not isinstance(section, dict):
        raise malformed("grant must be an object or null")
    kind = section.get("type")
    if kind not in ("share_grant", "open_contract"):
        raise malformed(f"unknown grant type {str(kind)[:40]!r}")
    nonneg_int(section.get("chain_id"), "grant.chain_id")
    address(section.get("contract"), "grant.contract")
    if not isinstance(section.get("scope"), dict):
        raise malformed("grant.scope must be an object")
    if kind == "share_grant":
        hex32(section.get("grant_id"), "grant.grant_id")
        check_signed(section.get("request"), "request")
        if section.get("decision") is not None:
            check_signed(section["decision"], "decision")
        return
    hex32(section.get("contract_id"), "grant.contract_id")
    hex32(section.get("terms_hash"), "grant.terms_hash")
    check_signed(section.get("proposal"), "proposal")
    signatures = section.get("signatures")
    if not isinstance(signatures, list) or len(signatures) > 64:
        raise malformed("grant.signatures must be a list")
    for n, item in enumerate(signatures):
        check_signed(item, f"signatures[{n}]")


# -- the log ----------------------------------------------------------------------------------------
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
        raise malformed("the entry holds values this small verifier does not canonicalise (floats?)")
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def verify_inclusion(leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes) -> None:
    """RFC 9162 §2.1.3.2, its preconditions checked first as the CLI does."""
    if not 0 <= index < size:
        raise Invalid("index_out_of_range", f"leaf index {index} is outside the tree of size {size}")
    inner = (index ^ (size - 1)).bit_length()
    expected = inner + (index >> inner).bit_count()
    if len(proof) != expected:
        raise Invalid("wrong_proof_length", f"the inclusion proof has {len(proof)} hashes, want {expected}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
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
        raise Invalid("root_mismatch", "the inclusion proof does not lead to the bundle's root")


def self_contained(bundle: Any) -> tuple[int, bytes, bytes]:
    if not isinstance(bundle, dict) or type(bundle.get("version")) is not int or bundle["version"] != 1:
        raise malformed("not a version 1 proof bundle")
    if not depth_within(bundle, MAX_BUNDLE_DEPTH):
        raise malformed(f"the bundle is nested deeper than {MAX_BUNDLE_DEPTH}")
    entry = bundle.get("entry")
    if not isinstance(entry, dict):
        raise malformed("entry must be a JSON object")
    if not depth_within(entry, MAX_ENTRY_DEPTH):
        raise malformed(f"entry is nested deeper than {MAX_ENTRY_DEPTH}")
    leaf = hashlib.sha256(b"\x00" + canonical(entry)).digest()
    index = nonneg_int(bundle.get("leaf_index"), "leaf_index")
    size = nonneg_int(bundle.get("tree_size"), "tree_size")
    proof = bundle.get("inclusion_proof")
    if not isinstance(proof, list) or len(proof) > 64:
        raise malformed("inclusion_proof must be a list of hashes")
    hashes = [hex32(p, "inclusion_proof element") for p in proof]
    root = hex32(bundle.get("root"), "root")
    verify_inclusion(leaf, index, size, hashes, root)
    return size, root, leaf


def read(call: Callable[[], T], *, contract_code: str = "anchor_contract_mismatch") -> T:
    """A chain read: a view that reverts or returns nothing decodable means the contract is not the one
    the bundle says; anything else that fails means the endpoint cannot be read."""
    try:
        return call()
    except (ContractLogicError, BadFunctionCallOutput) as exc:
        raise Invalid(contract_code, f"the contract does not answer as expected: {exc}") from exc
    except (Web3Exception, OSError, ValueError) as exc:
        raise Invalid("chain_unreachable", f"cannot read the chain: {exc}") from exc


def emitted(
    w3: Web3, ref: tuple[bytes, int], contract: str, topics: list[bytes], data: bytes, code: str
) -> None:
    tx_hash, block_number = ref
    try:
        receipt = w3.eth.get_transaction_receipt("0x" + tx_hash.hex())  # type: ignore[arg-type]
    except (Web3Exception, OSError, ValueError) as exc:
        raise Invalid(code, f"transaction 0x{tx_hash.hex()} is not on this chain") from exc
    if int(receipt["blockNumber"]) != block_number or int(receipt["status"]) != 1:
        raise Invalid(code, f"transaction 0x{tx_hash.hex()} is not in block {block_number}")
    for log in receipt["logs"]:
        if (
            str(log["address"]).lower() == contract.lower()
            and [bytes(t) for t in log["topics"]] == topics
            and bytes(log["data"]).startswith(data)
        ):
            return
    raise Invalid(code, f"transaction 0x{tx_hash.hex()} did not record this bundle's claim")


def check_note(note: Any, size: int, root: bytes) -> None:
    """The checkpoint note's body (origin, size, base64 root); its signature is not checked here."""
    if note is None:
        return
    if not isinstance(note, str):
        raise malformed("checkpoint_note must be a signed note (text)")
    body = note[: note.rfind("\n\n") + 1] if "\n\n" in note else note
    lines = body[:-1].split("\n") if body.endswith("\n") else []
    try:
        if len(lines) < 3 or not lines[1].isdigit() or (lines[1] != "0" and lines[1][0] == "0"):
            raise ValueError(lines[1:2])
        note_size, note_root = int(lines[1]), base64.b64decode(lines[2], validate=True)
    except (ValueError, binascii.Error):
        raise Invalid("malformed_checkpoint", "the checkpoint note is not a checkpoint") from None
    if len(note_root) != 32:
        raise Invalid("malformed_checkpoint", "the checkpoint note's root is not 32 bytes")
    if note_size != size or note_root != root:
        raise Invalid("note_mismatch", "the checkpoint note is not of the bundle's size and root")


# -- authorization ---------------------------------------------------------------------------------
def recover(typed_data: dict[str, Any], signature: bytes) -> str:
    message = encode_typed_data(full_message=typed_data)
    return str(Account.recover_message(message, signature=signature))


def struct_hash(typed_data: dict[str, Any]) -> bytes:
    return bytes(encode_typed_data(full_message=typed_data).body)


def signer(doc: dict[str, Any], section: dict[str, Any], what: str) -> str:
    """Who signed the EIP-712 document — refused if it was signed for another chain or contract."""
    domain = doc["typed_data"]["domain"]
    if (
        domain.get("chainId") != section["chain_id"]
        or str(domain.get("verifyingContract", "")).lower() != section["contract"].lower()
    ):
        raise Invalid("forged_signature", f"the {what} was signed for another chain or contract")
    try:
        return recover(doc["typed_data"], bytes.fromhex(str(doc["signature"]).removeprefix("0x")))
    except Exception as exc:  # eth-account raises several types for malformed signatures
        raise Invalid("forged_signature", f"the {what} signature is malformed") from exc


def id32(value: Any) -> bytes | None:
    """sharetrail's party and resource ids are 32 hex digits; on chain they are left-padded to 32 bytes."""
    if not isinstance(value, str) or len(value) != 32:
        return None
    try:
        return bytes(16) + bytes.fromhex(value)
    except ValueError:
        return None


def judged_at(entry: dict[str, Any]) -> int:
    """The entry's chain_time (the chain's clock) if it has one, else its time, in Unix seconds."""
    chain_time = entry.get("chain_time")
    if chain_time is not None:
        if not isinstance(chain_time, int) or isinstance(chain_time, bool) or chain_time < 0:
            raise ValueError("entry.chain_time must be a non-negative integer")
        return chain_time
    moment = datetime.fromisoformat(str(entry["time"]).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("entry.time carries no timezone")
    return int(moment.astimezone(UTC).timestamp())


def bound_to(w3: Web3, registry: str, account: str, party_id: Any, what: str) -> None:
    parties = w3.eth.contract(address=Web3.to_checksum_address(registry), abi=PARTY_ABI)
    record = read(
        parties.functions.partyOf(Web3.to_checksum_address(account)).call,
        contract_code="grant_contract_mismatch",
    )
    if bytes(record[3]) != id32(party_id):
        raise Invalid(
            "accessor_mismatch", f"the entry's accessor {party_id} is not the {what} registered at {account}"
        )


def revoked_at(w3: Web3, share_ledger: str, grant_id: bytes) -> int | None:
    query: Any = {
        "address": Web3.to_checksum_address(share_ledger),
        "topics": ["0x" + GRANT_REVOKED_TOPIC.hex(), "0x" + grant_id.hex()],
        "fromBlock": 0,
        "toBlock": "latest",
    }
    logs = read(lambda: w3.eth.get_logs(query))
    blocks = [int(log["blockNumber"]) for log in logs if not log.get("removed")]
    if not blocks:
        return None
    return int(read(lambda: w3.eth.get_block(min(blocks)))["timestamp"])


def verify_grant(w3: Web3, section: dict[str, Any], entry: dict[str, Any]) -> None:
    if entry.get("grant") != section["grant_id"]:
        raise Invalid("grant_mismatch", "the bundle's grant is not the one the entry names")
    share = w3.eth.contract(address=Web3.to_checksum_address(section["contract"]), abi=SHARE_ABI)
    view = "grant_contract_mismatch"
    g = read(share.functions.grantOf(b32(section["grant_id"])).call, contract_code=view)
    resource_id, grantee, _purpose, scope_hash, valid_from, valid_until, _cap, status = g
    if status == 0:
        raise Invalid("unknown_grant", "no such grant on chain")
    if bytes(resource_id) != id32(entry.get("resource")):
        raise Invalid("wrong_resource", "the grant is for another resource than the entry's")
    if Web3.keccak(canonical(section["scope"])) != bytes(scope_hash):
        raise Invalid("scope_mismatch", "the bundle's scope does not hash to the grant's on-chain scope hash")
    if signer(section["request"], section, "request").lower() != grantee.lower():
        raise Invalid("forged_signature", "the request was not signed by the grantee")
    decision = section.get("decision")
    if decision:  # conditional resources; unconditional ones are granted by the contract itself
        provider = read(share.functions.resourceOf(bytes(resource_id)).call, contract_code=view)[0]
        if signer(decision, section, "decision").lower() != provider.lower():
            raise Invalid("forged_signature", "the decision was not signed by the resource's provider")
    when = judged_at(entry)
    if not valid_from <= when < valid_until:
        raise Invalid("outside_window", "the access lies outside the grant's validity window")
    if status == GRANT_REVOKED:
        at = revoked_at(w3, section["contract"], b32(section["grant_id"]))
        if at is None or when >= at:
            raise Invalid("grant_revoked", f"the grant was revoked on chain at {at}, the access is of {when}")
    registry = read(share.functions.registry().call, contract_code=view)
    bound_to(w3, registry, grantee, entry.get("accessor"), "grantee")


def verify_contract(w3: Web3, section: dict[str, Any], entry: dict[str, Any]) -> None:
    if entry.get("contract") != section["contract_id"]:
        raise Invalid("contract_mismatch", "the bundle's contract is not the one the entry names")
    oc = w3.eth.contract(address=Web3.to_checksum_address(section["contract"]), abi=OPEN_ABI)
    view = "grant_contract_mismatch"
    cid = b32(section["contract_id"])
    rec = read(oc.functions.contractOf(cid).call, contract_code=view)
    kind, status, operator, enterprise, contract_hash = rec[0], rec[1], rec[5], rec[6], bytes(rec[12])
    if status == 0:
        raise Invalid("unknown_contract", "no such contract on chain")
    signers = [str(a) for a in read(oc.functions.signersOf(cid).call, contract_code=view)]
    proposer = signer(section["proposal"], section, "proposal")
    if proposer.lower() != (operator if kind == 0 else enterprise).lower():
        raise Invalid(
            "forged_signature", "the proposal was not signed by the operator (application: the enterprise)"
        )
    if struct_hash(section["proposal"]["typed_data"]) != contract_hash:
        raise Invalid("contract_hash_mismatch", "the proposal shown is not the contract on chain")
    seen = set()
    for item in section["signatures"]:
        who = signer(item, section, "signature")
        document = item["typed_data"]
        message = document["message"]
        if kind == 0:
            if document["primaryType"] != "Acceptance" or who.lower() != str(message["signer"]).lower():
                raise Invalid("forged_signature", f"an acceptance was not signed by {message.get('signer')}")
            if b32(message["contractHash"]) != contract_hash or b32(message["contractId"]) != cid:
                raise Invalid("contract_hash_mismatch", "an acceptance is of another contract")
            if not read(oc.functions.hasSigned(cid, Web3.to_checksum_address(who)).call, contract_code=view):
                raise Invalid("forged_signature", f"{who} has not signed this contract on chain")
        else:
            if document["primaryType"] != "Review" or b32(message["applicationId"]) != cid:
                raise Invalid("contract_hash_mismatch", "a review is of another application")
            if message["approve"] is not True:
                raise Invalid("forged_signature", "a review shown did not approve")
        seen.add(who.lower())
    if seen != {a.lower() for a in (signers if kind == 0 else signers[1:])}:
        raise Invalid("forged_signature", "the signatures shown are not exactly the contract's parties")
    if Web3.keccak(canonical(section["scope"])) != bytes(rec[13]):
        raise Invalid("scope_mismatch", "the scope does not hash to the contract's scope hash")
    if b32(section["terms_hash"]) != bytes(rec[14]):
        raise Invalid("terms_mismatch", "the terms hash is not the contract's")
    purpose = entry.get("purpose")
    if not isinstance(purpose, str):
        raise Invalid("purpose_not_in_contract", "the entry names no purpose")
    resource = id32(entry.get("resource"))
    if resource is None:
        raise Invalid("resource_not_in_contract", "the entry's resource is not in the contract")
    at = judged_at(entry)
    try:
        oc.functions.checkAuthorized(cid, enterprise, resource, Web3.keccak(text=purpose), at).call()
    except ContractLogicError as exc:  # web3 raises ContractCustomError with the error's data
        data = str(getattr(exc, "data", "") or exc)
        start = data.find("0x")
        why = REFUSALS.get(bytes.fromhex(data[start + 2 : start + 10])) if start >= 0 else None
        why = why or why_refused(oc, cid, resource, purpose, at)
        if why is None:
            raise Invalid("grant_contract_mismatch", f"checkAuthorized failed: {data}") from exc
        raise Invalid(why, f"the contract did not authorize this access at {at}") from exc
    except (Web3Exception, OSError, ValueError) as exc:
        raise Invalid("chain_unreachable", f"cannot read the chain: {exc}") from exc
    registry = read(oc.functions.registry().call, contract_code=view)
    bound_to(w3, registry, enterprise, entry.get("accessor"), "enterprise")


def why_refused(oc: Any, cid: bytes, resource: bytes, purpose: str, at: int) -> str | None:
    """Why checkAuthorized refused when the endpoint did not pass its custom error's data on: its
    checks redone from the contract's views, in its order (the accessor is the enterprise)."""
    view = "grant_contract_mismatch"
    if resource not in {bytes(r) for r in read(oc.functions.resourcesOf(cid).call, contract_code=view)}:
        return "resource_not_in_contract"
    if Web3.keccak(text=purpose) not in {
        bytes(p) for p in read(oc.functions.purposesOf(cid).call, contract_code=view)
    }:
        return "purpose_not_in_contract"
    status = int(read(oc.functions.statusAt(cid, at).call, contract_code=view))
    if status != 2:  # OpenContracts.Status: None, Proposed, Effective, Suspended, Terminated
        return {3: "contract_suspended", 4: "contract_terminated"}.get(status, "contract_not_effective")
    record = read(oc.functions.contractOf(cid).call, contract_code=view)
    if at < record[7]:
        return "contract_not_yet_valid"
    if at >= record[8]:
        return "contract_expired"
    if read(oc.functions.listedAt(resource, at).call, contract_code=view):
        return "negative_listed"
    return None


def verify_authority(w3: Web3, bundle: dict[str, Any]) -> None:
    entry, section = bundle["entry"], bundle.get("grant")
    if entry.get("kind") != "access":
        return  # a refusal, or a lifecycle event: nothing was delivered under an authorization
    named = entry.get("grant") or entry.get("contract")
    if section is None:
        if named:
            raise Invalid(
                "authority_missing", f"the entry names {named} but the bundle carries no evidence of it"
            )
        return  # an open (无条件开放) resource: no grant or contract is claimed
    if section["chain_id"] != bundle["anchor"]["chain_id"]:
        raise Invalid("chain_id_mismatch", "the grant lives on another chain than the anchor")
    if not read(lambda: bytes(w3.eth.get_code(Web3.to_checksum_address(section["contract"])))):
        raise Invalid("grant_contract_mismatch", "there is no contract at grant.contract")
    try:
        if section["type"] == "share_grant":
            verify_grant(w3, section, entry)
        else:
            verify_contract(w3, section, entry)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise malformed(f"the grant section is malformed: {exc}") from exc


def describe(bundle: dict[str, Any]) -> str:
    """What was verified, in the CLI's words."""
    entry, section = bundle["entry"], bundle.get("grant")
    if entry.get("kind") != "access":
        kind = str(entry.get("kind") or "untyped")[:32]
        return (
            f"inclusion and anchor verified; the entry is a {kind} event, not an access: "
            "authorization not checked"
        )
    if not isinstance(section, dict):
        return "inclusion and anchor verified; no grant or contract in the bundle: authorization not checked"
    if section["type"] == "share_grant":
        return f"inclusion, anchor and authorization verified: share grant {section['grant_id']}"
    return f"inclusion, anchor and authorization verified: open contract {section['contract_id']}"


# -- the whole bundle -------------------------------------------------------------------------------
def check_trusted(bundle: dict[str, Any], trusted: list[str]) -> None:
    """Every contract the bundle names is one the verifier trusts (``--trust``): a bundle could
    otherwise point at look-alike contracts deployed on the same chain."""
    allowed = {a.lower() for a in trusted}
    named = [("anchor.contract", (bundle.get("anchor") or {}).get("contract"))]
    if isinstance(bundle.get("grant"), dict):
        named.append(("grant.contract", bundle["grant"].get("contract")))
    for where, value in named:
        if not isinstance(value, str) or value.lower() not in allowed:
            raise Invalid("untrusted_contract", f"{where} {value} is not a contract you trust (--trust)")


def verify(bundle: Any, rpc_url: str, trusted: list[str] | None = None) -> None:
    size, root, leaf = self_contained(bundle)
    index = bundle["leaf_index"]
    anchor = bundle.get("anchor")
    if not isinstance(anchor, dict):
        raise malformed("anchor must be an object")
    anchor_address = address(anchor.get("contract"), "anchor.contract")
    chain_id = nonneg_int(anchor.get("chain_id"), "anchor.chain_id")
    anchor_ref = tx_ref(anchor, "anchor")
    record = None if bundle.get("leaf_record") is None else tx_ref(bundle["leaf_record"], "leaf_record")
    if bundle.get("grant") is not None:
        check_section_shape(bundle["grant"])
    if trusted is not None:
        check_trusted(bundle, trusted)
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 30}))
    actual = read(lambda: int(w3.eth.chain_id))
    if actual != chain_id:
        raise Invalid(
            "chain_id_mismatch",
            f"the endpoint serves chain {actual}, the log was anchored on chain {chain_id}",
        )
    if not read(lambda: bytes(w3.eth.get_code(anchor_address))):
        raise Invalid("anchor_contract_mismatch", f"there is no contract at anchor.contract {anchor_address}")
    contract = w3.eth.contract(address=anchor_address, abi=ANCHOR_ABI)
    on_chain = bytes(read(contract.functions.rootAt(size).call))
    if on_chain == bytes(32):
        raise Invalid("root_not_anchored", f"no root is anchored for tree size {size}")
    recorded = bytes(read(contract.functions.leafAt(index).call)) if record is not None else None
    if on_chain != root:
        raise Invalid("anchored_root_mismatch", f"the anchored root for size {size} is not the bundle's")
    emitted(
        w3,
        anchor_ref,
        anchor_address,
        [ANCHORED_TOPIC],
        size.to_bytes(32, "big") + root,
        "anchor_tx_mismatch",
    )
    if record is not None:
        if recorded != leaf:
            raise Invalid("leaf_record_mismatch", f"the chain holds another leaf at index {index}")
        emitted(
            w3,
            record,
            anchor_address,
            [LEAF_RECORDED_TOPIC, index.to_bytes(32, "big")],
            leaf,
            "leaf_record_mismatch",
        )
    check_note(bundle.get("checkpoint_note"), size, root)
    verify_authority(w3, bundle)


def load(path: str) -> Any:
    """The bundle file as JSON — refused (malformed_bundle) if unreadable, not UTF-8, nested too deep
    for a recursive parser, or not JSON."""
    try:
        if path == "-":
            raw = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as fh:
                raw = fh.read()
    except OSError as exc:
        raise malformed(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise malformed(f"{path} is not UTF-8 text (byte {exc.start})") from exc
    if raw.count(b"[") + raw.count(b"{") > MAX_BUNDLE_DEPTH and json_depth(raw) > MAX_BUNDLE_DEPTH:
        raise malformed(f"{path} is nested deeper than {MAX_BUNDLE_DEPTH} levels")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise malformed(f"{path} is not JSON: {str(exc)[:200]}") from exc


def main(argv: list[str]) -> int:
    args, trusted = list(argv[1:]), []
    while "--trust" in args:  # --trust ADDRESS, repeatable: the only contracts the bundle may name
        at = args.index("--trust")
        if at + 1 >= len(args):
            args = []
            break
        trusted.append(args[at + 1])
        del args[at : at + 2]
    if len(args) != 2:
        print("usage: verify_bundle_standalone.py BUNDLE.json RPC_URL [--trust ADDRESS ...]", file=sys.stderr)
        return 2
    try:
        bundle = load(args[0])
        verify(bundle, args[1], trusted or None)
    except Invalid as exc:
        print(f"FAILED {exc.code}: {exc}")
        return 1
    print(
        f"OK ({describe(bundle)}): log entry {bundle['leaf_index']} is included in the root anchored "
        f"at tree size {bundle['tree_size']} on chain {bundle['anchor']['chain_id']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
