"""Share requests (共享申请), decisions, co-signatures, grants.

Every signing step takes ``"signing": "custodial"`` (the server signs with the party's key) or
``"client"``: the response then carries the EIP-712 ``typed_data`` for the caller to sign and
``sign_at``, the path to POST ``{"signature": "0x…"}`` to. ``GET`` of the same object shows the
caller's pending ``typed_data`` again — re-issued with a fresh nonce after a 409 ``stale_nonce``.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from api.deps import CurrentParty, LedgerDep
from api.routing import Route
from ledger.log.events import AccessMode
from ledger.sharing.conditions import Conditions
from ledger.sharing.requests import Scope, pending_document, request_overdue
from ledger.store.models import Party, ShareRequest
from ledger.types import RequestStatus, Signing

router = APIRouter(tags=["sharing"], route_class=Route)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PurposeIn(Strict):
    code: str = Field(min_length=1, max_length=64, description="see GET /v1/purposes")
    text: str = Field(default="", max_length=2000, description="free text; only its hash goes on chain")


# Numbers and booleans are strict (no "5" for 5, no true for 1, no "yes" for true): per field, since
# a model-wide strict mode would also refuse the ISO 8601 strings the datetimes arrive as.
MAX_RECORDS = 10_000_000
MAX_ACCESSES = 4_000_000_000


class ScopeIn(Strict):
    fields: list[str] = Field(min_length=1, max_length=500)
    valid_from: datetime
    valid_until: datetime
    mode: AccessMode = AccessMode.RAW
    max_records: StrictInt = Field(default=1000, ge=1, le=MAX_RECORDS)
    max_accesses: StrictInt = Field(default=100, ge=1, le=MAX_ACCESSES)
    row_filter: dict[str, Any] = Field(default_factory=dict)

    def scope(self) -> Scope:
        return Scope(**dict(self))  # the same fields, by name


class RequestIn(Strict):
    resource_id: str
    purpose: PurposeIn
    legal_basis: str = Field(min_length=1, max_length=2000, description="履职依据")
    scope: ScopeIn
    signing: Signing = Signing.CUSTODIAL


class SignatureIn(Strict):
    signature: str = Field(pattern=r"^0x[0-9a-fA-F]{130}$")


class ConditionsIn(Strict):
    """An approval's conditions: each one left out is the request's own term (not a default), and none
    may be wider than the request (422 ``conditions_wider_than_request``; docs/architecture.md,
    "Share workflow")."""

    fields: list[str] | None = Field(default=None, min_length=1, max_length=500)
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    mode: AccessMode | None = None
    max_records: StrictInt | None = Field(default=None, ge=1, le=MAX_RECORDS)
    max_accesses: StrictInt | None = Field(default=None, ge=1, le=MAX_ACCESSES)
    row_filter: dict[str, Any] | None = None

    def conditions(self) -> Conditions:
        return Conditions(**dict(self))  # the same fields, by name


class DecisionIn(Strict):
    approve: StrictBool
    reason: str = Field(default="", max_length=4000)
    conditions: ConditionsIn | None = None
    signing: Signing = Signing.CUSTODIAL


class RevokeIn(Strict):
    reason: str = Field(min_length=1, max_length=4000)
    signing: Signing = Signing.CUSTODIAL


class CosignIn(Strict):
    signing: Signing = Signing.CUSTODIAL


# Where the signature of each kind of pending document is POSTed (relative to the request).
_SIGN_AT = {"Request": "signature", "Decision": "decision/signature", "Cosign": "cosign/signature"}


class RequestOut(BaseModel):
    id: str
    resource_id: str
    requester_id: str
    provider_id: str
    purpose: dict[str, str]
    legal_basis: str
    scope: dict[str, Any]
    status: RequestStatus
    applied_on: date
    respond_by: date
    overdue: bool
    late: bool
    reason: str | None
    grant_id: str | None
    request_tx: str | None
    decision_tx: str | None
    cosign_txs: list[str]
    typed_data: dict[str, Any] | None = Field(
        default=None, description="EIP-712 document the caller is to sign (client mode)"
    )
    sign_at: str | None = Field(default=None, description="where to POST the signature of typed_data")

    @classmethod
    def of(cls, row: ShareRequest, viewer: Party) -> RequestOut:
        typed = pending_document(row, viewer.id)
        sign_at = None if typed is None else f"/v1/share-requests/{row.id}/{_SIGN_AT[typed['primaryType']]}"
        return cls(
            id=row.id,
            resource_id=row.resource_id,
            requester_id=row.requester_id,
            provider_id=row.provider_id,
            purpose={"code": row.purpose_code, "text": row.purpose_text},
            legal_basis=row.legal_basis,
            scope=json.loads(row.scope_json),
            status=row.status,
            applied_on=row.applied_on,
            respond_by=row.respond_by,
            overdue=request_overdue(row),
            late=row.late,
            reason=row.reason,
            grant_id=row.grant_id,
            request_tx=row.request_tx,
            decision_tx=row.decision_tx,
            cosign_txs=json.loads(row.cosign_txs),
            typed_data=typed,
            sign_at=sign_at,
        )


@router.post("/v1/share-requests", status_code=status.HTTP_201_CREATED, response_model=RequestOut)
def create(body: RequestIn, caller: CurrentParty, ledger: LedgerDep) -> RequestOut:
    row = ledger.sharing.submit(
        caller,
        resource_id=body.resource_id,
        purpose_code=body.purpose.code,
        purpose_text=body.purpose.text,
        legal_basis=body.legal_basis,
        scope=body.scope.scope(),
        signing=body.signing,
    )
    return RequestOut.of(row, caller)


@router.get("/v1/share-requests", response_model=list[RequestOut])
def find(caller: CurrentParty, ledger: LedgerDep, status: str | None = None) -> list[RequestOut]:
    return [RequestOut.of(r, caller) for r in ledger.sharing.find(caller, status)]


@router.get("/v1/share-requests/{request_id}", response_model=RequestOut)
def read(request_id: str, caller: CurrentParty, ledger: LedgerDep) -> RequestOut:
    return RequestOut.of(ledger.sharing.get(caller, request_id), caller)


@router.post("/v1/share-requests/{request_id}/signature", response_model=RequestOut)
def sign_request(request_id: str, body: SignatureIn, caller: CurrentParty, ledger: LedgerDep) -> RequestOut:
    return RequestOut.of(ledger.sharing.submit_signature(caller, request_id, body.signature), caller)


@router.post("/v1/share-requests/{request_id}/decision", response_model=RequestOut)
def decide(request_id: str, body: DecisionIn, caller: CurrentParty, ledger: LedgerDep) -> RequestOut:
    conditions = body.conditions.conditions() if body.conditions is not None else None
    row = ledger.sharing.decide(
        caller,
        request_id,
        approve=body.approve,
        reason=body.reason,
        conditions=conditions,
        signing=body.signing,
    )
    return RequestOut.of(row, caller)


@router.post("/v1/share-requests/{request_id}/decision/signature", response_model=RequestOut)
def sign_decision(request_id: str, body: SignatureIn, caller: CurrentParty, ledger: LedgerDep) -> RequestOut:
    return RequestOut.of(ledger.sharing.decision_signature(caller, request_id, body.signature), caller)


@router.post("/v1/share-requests/{request_id}/cosign", response_model=RequestOut)
def cosign(
    request_id: str, caller: CurrentParty, ledger: LedgerDep, body: CosignIn | None = None
) -> RequestOut:
    signing = body.signing if body is not None else Signing.CUSTODIAL
    return RequestOut.of(ledger.sharing.cosign(caller, request_id, signing), caller)


@router.post("/v1/share-requests/{request_id}/cosign/signature", response_model=RequestOut)
def sign_cosign(request_id: str, body: SignatureIn, caller: CurrentParty, ledger: LedgerDep) -> RequestOut:
    return RequestOut.of(ledger.sharing.cosign_signature(caller, request_id, body.signature), caller)


def _grant_out(grant: dict[str, Any]) -> dict[str, Any]:
    sign_at = None if grant["typed_data"] is None else f"/v1/grants/{grant['grant_id']}/revoke/signature"
    return {**grant, "sign_at": sign_at}


@router.get("/v1/grants/{grant_id}")
def grant(grant_id: str, caller: CurrentParty, ledger: LedgerDep) -> dict[str, Any]:
    return _grant_out(ledger.sharing.grants.grant(caller, grant_id))


@router.get("/v1/grants/{grant_id}/authorization")
def authorization(grant_id: str, caller: CurrentParty, ledger: LedgerDep) -> dict[str, Any]:
    """200 if the caller may use the grant now; otherwise 403 naming why (expired, revoked, …)."""
    return ledger.sharing.grants.authorize(caller, grant_id)


@router.post("/v1/grants/{grant_id}/revoke")
def revoke(grant_id: str, body: RevokeIn, caller: CurrentParty, ledger: LedgerDep) -> dict[str, Any]:
    return _grant_out(ledger.sharing.grants.revoke(caller, grant_id, body.reason, body.signing))


@router.post("/v1/grants/{grant_id}/revoke/signature")
def sign_revocation(
    grant_id: str, body: SignatureIn, caller: CurrentParty, ledger: LedgerDep
) -> dict[str, Any]:
    return _grant_out(ledger.sharing.grants.revoke_signature(caller, grant_id, body.signature))
