"""Proof of authorized use: the bundle's ``grant`` section checked against the chain.

A bundle's inclusion proof shows an access was logged; this shows it was *authorized* — with
nothing but a chain endpoint (issue: "prove to a customer, an auditor or a court that each use was
authorized"). For an access made under

- a **share grant**: ``ShareLedger.grantOf`` holds it; the request was signed by the grantee and the
  decision (conditional resources) by the resource's provider; the scope shown hashes to the grant's
  ``scopeHash``; the grant is for the entry's resource; the access time lies in its window; and,
  if the grant is revoked on chain, the access came before the revocation — ``ShareLedger`` keeps
  no revocation time, so it is the timestamp of the block whose ``GrantRevoked(grantId)`` event
  revoked it (DESIGN "Grant": status active, revoked, expired);
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

Time: an access is judged at the time its entry records, on the chain's clock when it has one —
``chain_time``, the timestamp of the block the gateway read the grant or contract at — else at its
``time``. Revocations, suspensions and terminations are compared with block timestamps.

Only an ``access`` entry claims an authorization: a refusal or a lifecycle event (a request, a
declaration…) delivered nothing, so its ``grant`` section is not checked; nor is an access that
names no grant or contract. :func:`authorization_of` says which case a bundle is, so a verifier's
output can say explicitly when authorization was *not* checked.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from eth_utils.crypto import keccak
from web3 import Web3
from web3.exceptions import Web3Exception

from ledger.canonical import canonical_json
from ledger.chain.client import Chain
from ledger.chain.contracts import load_artifact
from ledger.errors import ChainError, ContractRevert, InvalidInput, VerificationError
from ledger.identity.parties import party_id_bytes32
from ledger.sharing import eip712

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


# OpenContracts.Status: None, Proposed, Effective, Suspended, Terminated.
_EFFECTIVE = 2
_STATUS_REFUSALS = {3: "contract_suspended", 4: "contract_terminated"}
GRANT_REVOKED = 2  # ShareLedger.GRANT_REVOKED
GRANT_REVOKED_TOPIC = keccak(text="GrantRevoked(bytes32,address,bytes32)")


class Authorization(enum.StrEnum):
    """What a bundle's entry claims as its authorization, hence what :func:`check_authority` checks."""

    SHARE_GRANT = "share_grant"
    OPEN_CONTRACT = "open_contract"
    NOT_CLAIMED = "not_claimed"  # an access under no grant or contract (an open resource, an import)
    NOT_AN_ACCESS = "not_an_access"  # a refusal or a lifecycle event: nothing was delivered


def authorization_of(bundle: dict[str, Any]) -> Authorization:
    """Which authorization the bundle's entry claims (call once :func:`check_authority` passed)."""
    entry = bundle.get("entry")
    if not isinstance(entry, dict) or entry.get("kind") != "access":
        return Authorization.NOT_AN_ACCESS
    section = bundle.get("grant")
    if not isinstance(section, dict):
        return Authorization.NOT_CLAIMED
    return Authorization(section["type"])


def describe(bundle: dict[str, Any]) -> str:
    """What a successful verification established, in words (the CLI's ``OK (…)``)."""
    claim = authorization_of(bundle)
    if claim is Authorization.SHARE_GRANT:
        return f"inclusion, anchor and authorization verified: share grant {bundle['grant']['grant_id']}"
    if claim is Authorization.OPEN_CONTRACT:
        return f"inclusion, anchor and authorization verified: open contract {bundle['grant']['contract_id']}"
    if claim is Authorization.NOT_CLAIMED:
        return "inclusion and anchor verified; no grant or contract in the bundle: authorization not checked"
    kind = str(bundle["entry"].get("kind") or "untyped")[:32]
    return (
        f"inclusion and anchor verified; the entry is a {kind} event, not an access: "
        "authorization not checked"
    )


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
    check_section_shape(section)
    chain_id = bundle["anchor"]["chain_id"]
    if section["chain_id"] != chain_id:
        raise VerificationError("the grant lives on another chain than the anchor", code="chain_id_mismatch")
    chain: Chain | None = None
    try:
        chain = Chain.http(rpc_url, timeout=timeout)
        if not chain.code_at(section["contract"]):
            raise VerificationError(
                f"there is no contract at grant.contract {section['contract']} on chain {chain_id}",
                code="grant_contract_mismatch",
            )
        if section["type"] == "share_grant":
            _share_grant(chain, section, entry)
        else:
            _open_contract(chain, section, entry)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, InvalidInput) as exc:
        raise VerificationError(f"the grant section is malformed: {exc}", code="malformed_bundle") from exc
    except ContractRevert as exc:
        raise VerificationError(
            f"the contract at grant.contract does not answer as a {section['type']} contract: {exc}",
            code="grant_contract_mismatch",
        ) from exc
    except ChainError as exc:
        raise VerificationError(
            f"cannot read the chain at {rpc_url}: {exc}", code="chain_unreachable"
        ) from exc
    finally:
        if chain is not None:
            chain.close()


# -- the section's shape, checked before anything is read from it ---------------------------------
def _malformed(what: str) -> VerificationError:
    return VerificationError(f"grant.{what}", code="malformed_bundle")


def _signed(value: Any, what: str) -> None:
    """``{"typed_data": {EIP-712 document}, "signature": "0x…"}``."""
    if not isinstance(value, dict):
        raise _malformed(f"{what} must be an object")
    document = value.get("typed_data")
    if not isinstance(document, dict):
        raise _malformed(f"{what}.typed_data must be an object")
    for key, kind in (("domain", dict), ("types", dict), ("message", dict), ("primaryType", str)):
        if not isinstance(document.get(key), kind):
            raise _malformed(f"{what}.typed_data.{key} must be {'text' if kind is str else 'an object'}")
    if not isinstance(value.get("signature"), str):
        raise _malformed(f"{what}.signature must be a hex string")


def check_section_shape(section: Any) -> None:
    """Refuse (``malformed_bundle``) a ``grant`` section whose shape is not the one served, so that
    no later check meets a value of the wrong type."""
    if not isinstance(section, dict):
        raise VerificationError("grant must be an object or null", code="malformed_bundle")
    kind = section.get("type")
    if kind not in ("share_grant", "open_contract"):
        raise VerificationError(f"unknown grant type {str(kind)[:40]!r}", code="malformed_bundle")
    chain_id = section.get("chain_id")
    if not isinstance(chain_id, int) or isinstance(chain_id, bool) or chain_id < 0:
        raise _malformed("chain_id must be a non-negative integer")
    address = section.get("contract")
    if not isinstance(address, str) or not Web3.is_address(address):
        raise _malformed("contract must be an address")
    if not isinstance(section.get("scope"), dict):
        raise _malformed("scope must be an object")
    if kind == "share_grant":
        _b32_field(section, "grant_id")
        _signed(section.get("request"), "request")
        if section.get("decision") is not None:
            _signed(section["decision"], "decision")
        return
    _b32_field(section, "contract_id")
    _b32_field(section, "terms_hash")
    _signed(section.get("proposal"), "proposal")
    signatures = section.get("signatures")
    if not isinstance(signatures, list) or len(signatures) > 64:
        raise _malformed("signatures must be a list")
    for n, item in enumerate(signatures):
        _signed(item, f"signatures[{n}]")


def _b32_field(section: dict[str, Any], key: str) -> None:
    try:
        _b32(section.get(key))
    except ValueError:
        raise _malformed(f"{key} must be 0x + 64 hex digits") from None


def judged_at(entry: dict[str, Any]) -> int:
    """When the access is judged: its ``chain_time`` (the chain's clock) if the entry has one, else
    its ``time`` (RFC 3339, with an offset), in Unix seconds."""
    chain_time = entry.get("chain_time")
    if chain_time is not None:
        if not isinstance(chain_time, int) or isinstance(chain_time, bool) or chain_time < 0:
            raise ValueError("entry.chain_time must be a non-negative integer")
        return chain_time
    moment = datetime.fromisoformat(str(entry["time"]).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("entry.time carries no timezone")
    return int(moment.astimezone(UTC).timestamp())


def _b32(value: Any) -> bytes:
    if not isinstance(value, str) or len(value) != 66 or not value.startswith("0x"):
        raise ValueError(f"not a 32-byte hex value: {value!r}")
    return bytes.fromhex(value[2:])


def _signer(document: dict[str, Any], signature: Any, *, chain_id: int, contract: str, what: str) -> str:
    """Who signed ``document`` — refused if its domain is another chain or contract."""
    domain = document.get("domain")
    if not isinstance(domain, dict) or (
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


def _id32(value: Any) -> bytes | None:
    """A sharetrail id (32 hex digits: a party or a resource) as the chain keeps it, left-padded to
    32 bytes; None if ``value`` is not such an id (it then matches nothing on chain)."""
    if not isinstance(value, str) or len(value) != 32:
        return None
    try:
        return party_id_bytes32(value)  # the same padding as resource_id_bytes32
    except ValueError:
        return None


def _same(a: str, b: str) -> bool:
    return a.lower() == b.lower()


def _bound_to(chain: Chain, registry_address: str, address: str, party_id: Any, what: str) -> None:
    """The entry's accessor (a party id) is the party registered at ``address``."""
    registry = chain.contract(registry_address, load_artifact("PartyRegistry")["abi"])
    record = chain.call(registry.functions.partyOf(Web3.to_checksum_address(address)))
    if bytes(record[3]) != _id32(party_id):
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
    if bytes(resource_id) != _id32(entry.get("resource")):
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
    when = judged_at(entry)
    if not int(valid_from) <= when < int(valid_until):
        raise VerificationError("the access lies outside the grant's validity window", code="outside_window")
    if int(status) == GRANT_REVOKED:
        revoked_at = _revoked_at(chain, section["contract"], _b32(section["grant_id"]))
        if revoked_at is None or when >= revoked_at:
            raise VerificationError(
                f"the grant was revoked on chain at {revoked_at}, the access is of {when}"
                if revoked_at is not None
                else "the grant is revoked on chain and no GrantRevoked event dates the revocation",
                code="grant_revoked",
                revoked_at=revoked_at,
                access_time=when,
            )
    _bound_to(chain, chain.call(share.functions.registry()), str(grantee), entry.get("accessor"), "grantee")


def _revoked_at(chain: Chain, share_ledger: str, grant_id: bytes) -> int | None:
    """The timestamp of the block in which ``ShareLedger`` emitted ``GrantRevoked(grant_id)`` (a grant
    is revoked at most once), or None if the chain shows no such event."""
    query: Any = {
        "address": Web3.to_checksum_address(share_ledger),
        "topics": ["0x" + GRANT_REVOKED_TOPIC.hex(), "0x" + grant_id.hex()],
        "fromBlock": 0,
        "toBlock": "latest",
    }
    try:
        logs = chain.w3.eth.get_logs(query)
        blocks = [int(log["blockNumber"]) for log in logs if not log.get("removed")]
        if not blocks:
            return None
        return int(chain.w3.eth.get_block(min(blocks))["timestamp"])
    except (Web3Exception, OSError, ValueError) as exc:
        raise ChainError(f"cannot read GrantRevoked events: {exc}", code="chain_unavailable") from exc


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
    resource = _id32(entry.get("resource"))
    if resource is None:
        raise VerificationError(
            "the entry's resource is not in the contract", code="resource_not_in_contract"
        )
    at = judged_at(entry)
    fn = oc.functions.checkAuthorized(
        raw_id,
        Web3.to_checksum_address(enterprise),
        resource,
        keccak(text=purpose),
        at,
    )
    try:
        chain.call(fn)
    except ContractRevert as exc:
        code = (
            exc.code
            if exc.code in _CONTRACT_REFUSALS
            else _why_refused(chain, oc, raw_id, resource, purpose, at)
        )
        if code is None:
            raise
        raise VerificationError(
            f"the contract did not authorize this access at {at}: {exc.message}", code=code
        ) from exc
    _bound_to(chain, chain.call(oc.functions.registry()), enterprise, entry.get("accessor"), "enterprise")


def _why_refused(chain: Chain, oc: Any, raw_id: bytes, resource: bytes, purpose: str, at: int) -> str | None:
    """Why ``checkAuthorized`` refused, when the endpoint did not pass its custom error's data on:
    its checks redone from the contract's views, in its order (the accessor is the enterprise)."""
    if bytes(resource) not in {bytes(r) for r in chain.call(oc.functions.resourcesOf(raw_id))}:
        return "resource_not_in_contract"
    if keccak(text=purpose) not in {bytes(p) for p in chain.call(oc.functions.purposesOf(raw_id))}:
        return "purpose_not_in_contract"
    status = int(chain.call(oc.functions.statusAt(raw_id, at)))
    if status != _EFFECTIVE:
        return _STATUS_REFUSALS.get(status, "contract_not_effective")
    record = chain.call(oc.functions.contractOf(raw_id))
    if at < int(record[7]):
        return "contract_not_yet_valid"
    if at >= int(record[8]):
        return "contract_expired"
    if chain.call(oc.functions.listedAt(resource, at)):
        return "negative_listed"
    return None


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
