"""EIP-712 typed data for every consent the share and open-contract contracts check.

The domain carries the chain id and the ``ShareLedger`` address, and every message a per-signer
nonce, so a signature cannot be replayed on another chain, another deployment, or twice. The same
JSON is what client-mode parties sign with any wallet (``eth_signTypedData_v4``) or with
``eth_account.Account.sign_typed_data(full_message=...)`` — no sharetrail code on the client side.
"""

from __future__ import annotations

from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount

DOMAIN_NAME = "sharetrail"
DOMAIN_VERSION = "1"

TYPES: dict[str, list[tuple[str, str]]] = {
    "ResourceVersion": [
        ("resourceId", "bytes32"),
        ("provider", "address"),
        ("level", "uint8"),
        ("shareType", "uint8"),
        ("openType", "uint8"),
        ("metadataHash", "bytes32"),
        ("version", "uint32"),
        ("nonce", "uint256"),
    ],
    "Request": [
        ("requestId", "bytes32"),
        ("resourceId", "bytes32"),
        ("requester", "address"),
        ("purposeHash", "bytes32"),
        ("scopeHash", "bytes32"),
        ("validFrom", "uint64"),
        ("validUntil", "uint64"),
        ("maxAccesses", "uint32"),
        ("nonce", "uint256"),
    ],
    "Decision": [
        ("requestId", "bytes32"),
        ("approve", "bool"),
        ("conditionsHash", "bytes32"),
        ("reasonHash", "bytes32"),
        ("validFrom", "uint64"),
        ("validUntil", "uint64"),
        ("maxAccesses", "uint32"),
        ("nonce", "uint256"),
    ],
    "Cosign": [("requestId", "bytes32"), ("decisionHash", "bytes32"), ("nonce", "uint256")],
    "Revocation": [("grantId", "bytes32"), ("reasonHash", "bytes32"), ("nonce", "uint256")],
    "Dispute": [
        ("disputeId", "bytes32"),
        ("resourceId", "bytes32"),
        ("version", "uint32"),
        ("filer", "address"),
        ("reasonHash", "bytes32"),
        ("nonce", "uint256"),
    ],
    "DisputeAnswer": [
        ("disputeId", "bytes32"),
        ("corrected", "bool"),
        ("newMetadataHash", "bytes32"),
        ("answerHash", "bytes32"),
        ("nonce", "uint256"),
    ],
    # OpenContracts (契约式开放 / 依申请开放 / 负面清单): the same domain name, its own verifying contract.
    "OpenContract": [
        ("contractId", "bytes32"),
        ("operator", "address"),
        ("enterprise", "address"),
        ("resources", "bytes32[]"),
        ("purposes", "bytes32[]"),
        ("scopeHash", "bytes32"),
        ("validFrom", "uint64"),
        ("validUntil", "uint64"),
        ("obligations", "uint16"),
        ("termsHash", "bytes32"),
        ("nonce", "uint256"),
    ],
    "Acceptance": [
        ("contractId", "bytes32"),
        ("contractHash", "bytes32"),
        ("signer", "address"),
        ("nonce", "uint256"),
    ],
    "StatusChange": [
        ("contractId", "bytes32"),
        ("action", "uint8"),
        ("reasonHash", "bytes32"),
        ("nonce", "uint256"),
    ],
    "Application": [
        ("applicationId", "bytes32"),
        ("enterprise", "address"),
        ("resourceId", "bytes32"),
        ("purpose", "bytes32"),
        ("scopeHash", "bytes32"),
        ("qualificationsHash", "bytes32"),
        ("validFrom", "uint64"),
        ("validUntil", "uint64"),
        ("nonce", "uint256"),
    ],
    "Review": [
        ("applicationId", "bytes32"),
        ("approve", "bool"),
        ("reasonHash", "bytes32"),
        ("nonce", "uint256"),
    ],
    "Listing": [
        ("resourceId", "bytes32"),
        ("listed", "bool"),
        ("reasonHash", "bytes32"),
        ("nonce", "uint256"),
    ],
}


def _b32(value: Any) -> bytes:
    raw = bytes.fromhex(value[2:]) if isinstance(value, str) else bytes(value)
    return raw.rjust(32, b"\0")


def _json_value(kind: str, value: Any) -> Any:
    if kind == "bytes32":
        return "0x" + _b32(value).hex()
    if kind == "bytes32[]":
        return ["0x" + _b32(v).hex() for v in value]
    return value


def typed_data(primary: str, message: dict[str, Any], *, chain_id: int, contract: str) -> dict[str, Any]:
    """The full EIP-712 document (JSON-safe) for ``primary`` with ``message``."""
    fields = TYPES[primary]
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            primary: [{"name": n, "type": t} for n, t in fields],
        },
        "primaryType": primary,
        "domain": {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": chain_id,
            "verifyingContract": contract,
        },
        "message": {n: _json_value(t, message[n]) for n, t in fields},
    }


def sign(account: LocalAccount, document: dict[str, Any]) -> bytes:
    """Sign as a custodial party (the server holds the key)."""
    return bytes(account.sign_typed_data(full_message=document).signature)


def recover(document: dict[str, Any], signature: bytes) -> str:
    """The address that signed ``document`` (to refuse a wrong key before paying for a transaction)."""
    return str(Account.recover_message(encode_typed_data(full_message=document), signature=signature))


def as_tuple(document: dict[str, Any]) -> tuple[Any, ...]:
    """The message as the ABI tuple the contract function takes."""
    primary = document["primaryType"]
    out: list[Any] = []
    for name, kind in TYPES[primary]:
        value = document["message"][name]
        if kind == "bytes32":
            out.append(bytes.fromhex(value[2:]))
        elif kind == "bytes32[]":
            out.append([bytes.fromhex(v[2:]) for v in value])
        else:
            out.append(value)
    return tuple(out)


def struct_hash(document: dict[str, Any]) -> bytes:
    """The EIP-712 ``hashStruct(message)`` of ``document`` — what the contracts keep (e.g. a contract's
    ``contractHash``) and what an ``Acceptance`` names."""
    return bytes(encode_typed_data(full_message=document).body)
