"""Proof of authorized use: the bundle's ``grant`` section checked against the chain.

A bundle's inclusion proof shows an access was logged; this shows it was *authorized* — with
nothing but a chain endpoint (issue: "prove to a customer, an auditor or a court that each use was
authorized"). For an access made under

- a **share grant**: ``ShareLedger.grantOf`` holds it; the request was signed by the grantee and the
  decision (conditional resources) by the resource's provider; the scope shown hashes to the grant's
  ``scopeHash``; the grant is for the entry's resource; the access time lies in its window;
- an **open contract**: ``OpenContracts.contractOf`` holds it; the proposal (or, for an
  application-backed contract, the application) hashes to the on-chain ``contractHash`` and was signed
  by the operator (the enterprise); every acceptance (review) was signed by the party it names, over
  that hash, and the set of signers is exactly ``signersOf``; the scope and the terms hash are the
  chain's; and ``checkAuthorized(contract, enterprise, resource, keccak(purpose), time)`` passes —
  the contract was effective at the access time (not pending, suspended or terminated), the purpose
  and the resource are in it, and the resource was not on the negative list then.

In both cases the accessor named by the entry (a party id) must be the party the chain's
``PartyRegistry`` registered at the grantee's / enterprise's address. Every failure raises
:class:`VerificationError` with a stable code.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from eth_utils.crypto import keccak
from web3 import Web3

from ledger.canonical import canonical_json
from ledger.chain.client import Chain
from ledger.chain.contracts import load_artifact
from ledger.errors import ChainError, ContractRevert, InvalidInput, VerificationError
from ledger.identity.parties import party_id_bytes32
from ledger.sharing import eip712
from ledger.sharing.catalog import resource_id_bytes32

# OpenContracts.checkAuthorized's custom errors, by their snake_case code, kept as the refusal code.
_CONTRACT_REFUSALS = {
    "unknown_contract",
    "not_contract_enterprise",
    "resource_not_in_contract",
    "purpose_not_in_contract",
    "contract_not_effective",
    "contract_suspended",
    "contract_terminated",
    "contract_not_yet_valid",
    "contract_expired",
    "negative_listed",
}


def check_authority(bundle: dict[str, Any], rpc_url: str, *, timeout: float = 30.0) -> None:
    """Verify the bundle's ``grant`` section for its entry (see the module docstring)."""
    entry = bundle["entry"]
    section = bundle.get("grant")
    if entry.get("kind") != "access":
        return  # a refusal, or a lifecycle event: nothing was delivered under an authorization
    named = entry.get("grant") or entry.get("contract")
    if section is None:
        if named:
            raise VerificationError(
                f"the entry names {named} but the bundle carries no evidence of it", code="authority_missing"
            )
        return  # an open (无条件开放) resource: no grant or contract is claimed
    if not isinstance(section, dict):
        raise VerificationError("grant must be an object", code="malformed_bundle")
    chain_id = bundle["anchor"]["chain_id"]
    if section.get("chain_id") != chain_id:
        raise VerificationError("the grant lives on another chain than the anchor", code="chain_id_mismatch")
    address = section.get("contract")
    if not isinstance(address, str) or not Web3.is_address(address):
        raise VerificationError("grant.contract must be an address", code="malformed_bundle")
    chain = Chain.http(rpc_url, timeout=timeout)
    try:
        kind = section.get("type")
        if kind == "share_grant":
            _share_grant(chain, section, entry)
        elif kind == "open_contract":
            _open_contract(chain, section, entry)
        else:
            raise VerificationError(f"unknown grant type {kind!r}", code="malformed_bundle")
    except (KeyError, TypeError, ValueError, InvalidInput) as exc:
        raise VerificationError(f"the grant section is malformed: {exc}", code="malformed_bundle") from exc
    except ChainError as exc:
        raise VerificationError(
            f"cannot read the chain at {rpc_url}: {exc}", code="chain_unreachable"
        ) from exc
    finally:
        chain.close()


def _access_time(entry: dict[str, Any]) -> int:
    return int(datetime.fromisoformat(str(entry["time"]).replace("Z", "+00:00")).astimezone(UTC).timestamp())


def _b32(value: Any) -> bytes:
    if not isinstance(value, str) or len(value) != 66 or not value.startswith("0x"):
        raise ValueError(f"not a 32-byte hex value: {value!r}")
    return bytes.fromhex(value[2:])


def _signer(document: dict[str, Any], signature: Any, *, chain_id: int, contract: str, what: str) -> str:
    """Who signed ``document`` — refused if its domain is another chain or contract."""
    domain = document.get("domain", {})
    if (
        domain.get("chainId") != chain_id
        or str(domain.get("verifyingContract", "")).lower() != contract.lower()
    ):
        raise VerificationError(
            f"the {what} was signed for another chain or contract", code="forged_signature"
        )
    try:
        return eip712.recover(document, bytes.fromhex(str(signature).removeprefix("0x")))
    except Exception as exc:  # eth-account raises several types for malformed signatures
        raise VerificationError(f"the {what} signature is malformed", code="forged_signature") from exc


def _same(a: str, b: str) -> bool:
    return a.lower() == b.lower()


def _bound_to(chain: Chain, registry_address: str, address: str, party_id: Any, what: str) -> None:
    """The entry's accessor (a party id) is the party registered at ``address``."""
    registry = chain.contract(registry_address, load_artifact("PartyRegistry")["abi"])
    record = chain.call(registry.functions.partyOf(Web3.to_checksum_address(address)))
    if not isinstance(party_id, str) or bytes(record[3]) != party_id_bytes32(party_id):
        raise VerificationError(
            f"the entry's accessor {party_id} is not the {what} registered at {address}",
            code="accessor_mismatch",
        )


def _share_grant(chain: Chain, section: dict[str, Any], entry: dict[str, Any]) -> None:
    if entry.get("grant") != section["grant_id"]:
        raise VerificationError("the bundle's grant is not the one the entry names", code="grant_mismatch")
    share = chain.contract(section["contract"], load_artifact("ShareLedger")["abi"])
    g = chain.call(share.functions.grantOf(_b32(section["grant_id"])))
    resource_id, grantee, _purpose, scope_hash, valid_from, valid_until, _cap, status = g
    if int(status) == 0:
        raise VerificationError("no such grant on chain", code="unknown_grant")
    if bytes(resource_id) != resource_id_bytes32(entry["resource"]):
        raise VerificationError("the grant is for another resource than the entry's", code="wrong_resource")
    if keccak(canonical_json(section["scope"])) != bytes(scope_hash):
        raise VerificationError(
            "the scope does not hash to the grant's on-chain scope hash", code="scope_mismatch"
        )
    chain_id, contract = section["chain_id"], section["contract"]
    request = section["request"]
    if not _same(
        _signer(
            request["typed_data"], request["signature"], chain_id=chain_id, contract=contract, what="request"
        ),
        str(grantee),
    ):
        raise VerificationError("the request was not signed by the grantee", code="forged_signature")
    decision = section.get("decision")
    if decision:  # conditional resources; an unconditional one is granted by the contract itself
        provider = chain.call(share.functions.resourceOf(bytes(resource_id)))[0]
        signer = _signer(
            decision["typed_data"],
            decision["signature"],
            chain_id=chain_id,
            contract=contract,
            what="decision",
        )
        if not _same(signer, str(provider)):
            raise VerificationError(
                "the decision was not signed by the resource's provider", code="forged_signature"
            )
    when = _access_time(entry)
    if not int(valid_from) <= when < int(valid_until):
        raise VerificationError("the access lies outside the grant's validity window", code="outside_window")
    _bound_to(chain, chain.call(share.functions.registry()), str(grantee), entry.get("accessor"), "grantee")


def _open_contract(chain: Chain, section: dict[str, Any], entry: dict[str, Any]) -> None:
    contract_id = section["contract_id"]
    if entry.get("contract") != contract_id:
        raise VerificationError(
            "the bundle's contract is not the one the entry names", code="contract_mismatch"
        )
    chain_id, address = section["chain_id"], section["contract"]
    oc = chain.contract(address, load_artifact("OpenContracts")["abi"])
    raw_id = _b32(contract_id)
    rec = chain.call(oc.functions.contractOf(raw_id))
    if int(rec[1]) == 0:
        raise VerificationError(f"no open contract {contract_id} on chain", code="unknown_contract")
    operator, enterprise, contract_hash = str(rec[5]), str(rec[6]), bytes(rec[12])
    signers = [str(a) for a in chain.call(oc.functions.signersOf(raw_id))]
    proposal = section["proposal"]
    proposer = _signer(
        proposal["typed_data"], proposal["signature"], chain_id=chain_id, contract=address, what="proposal"
    )
    expected = operator if int(rec[0]) == 0 else enterprise
    if not _same(proposer, expected):
        raise VerificationError(
            "the contract's proposal was not signed by its operator"
            if int(rec[0]) == 0
            else "the application was not signed by the enterprise",
            code="forged_signature",
        )
    if eip712.struct_hash(proposal["typed_data"]) != contract_hash:
        raise VerificationError(
            "the proposal shown is not the contract on chain", code="contract_hash_mismatch"
        )
    _acceptances(chain, oc, section, signers, int(rec[0]), raw_id, contract_hash)
    if keccak(canonical_json(section["scope"])) != bytes(rec[13]):
        raise VerificationError("the scope does not hash to the contract's scope hash", code="scope_mismatch")
    if _b32(section["terms_hash"]) != bytes(rec[14]):
        raise VerificationError("the terms hash is not the contract's", code="terms_mismatch")
    purpose = entry.get("purpose")
    if not isinstance(purpose, str):
        raise VerificationError("the entry names no purpose", code="purpose_not_in_contract")
    chain_time = entry.get("chain_time")
    at = (
        chain_time
        if isinstance(chain_time, int) and not isinstance(chain_time, bool)
        else _access_time(entry)
    )
    fn = oc.functions.checkAuthorized(
        raw_id,
        Web3.to_checksum_address(enterprise),
        resource_id_bytes32(entry["resource"]),
        keccak(text=purpose),
        at,
    )
    try:
        chain.call(fn)
    except ContractRevert as exc:
        if exc.code in _CONTRACT_REFUSALS:
            raise VerificationError(
                f"the contract did not authorize this access at {entry['time']}: {exc.message}", code=exc.code
            ) from exc
        raise
    _bound_to(chain, chain.call(oc.functions.registry()), enterprise, entry.get("accessor"), "enterprise")


def _acceptances(
    chain: Chain,
    oc: Any,
    section: dict[str, Any],
    signers: list[str],
    kind: int,
    raw_id: bytes,
    contract_hash: bytes,
) -> None:
    """Every party's signature: acceptances of ``contract_hash`` (contract mode), or the provider's and
    the operator's approving reviews (an application-backed contract)."""
    chain_id, address = section["chain_id"], section["contract"]
    seen: set[str] = set()
    for item in section["signatures"]:
        document = item["typed_data"]
        who = _signer(document, item["signature"], chain_id=chain_id, contract=address, what="signature")
        message = document["message"]
        if kind == 0:
            if document["primaryType"] != "Acceptance" or not _same(who, str(message["signer"])):
                raise VerificationError(
                    f"an acceptance was not signed by {message.get('signer')}", code="forged_signature"
                )
            if _b32(message["contractHash"]) != contract_hash or _b32(message["contractId"]) != raw_id:
                raise VerificationError("an acceptance is of another contract", code="contract_hash_mismatch")
            if not chain.call(oc.functions.hasSigned(raw_id, Web3.to_checksum_address(who))):
                raise VerificationError(
                    f"{who} has not signed this contract on chain", code="forged_signature"
                )
        else:
            if document["primaryType"] != "Review" or _b32(message["applicationId"]) != raw_id:
                raise VerificationError("a review is of another application", code="contract_hash_mismatch")
            if message["approve"] is not True:
                raise VerificationError("a review shown did not approve", code="forged_signature")
        seen.add(who.lower())
    needed = {a.lower() for a in (signers if kind == 0 else signers[1:])}
    if seen != needed:
        raise VerificationError(
            f"the signatures shown are of {sorted(seen)}, the contract's parties are {sorted(needed)}",
            code="forged_signature",
        )
