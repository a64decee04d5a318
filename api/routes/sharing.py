"""Share requests (共享申请), decisions, co-signatures, grants."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from api.deps import CurrentParty, LedgerDep
from ledger.log.events import AccessMode
from ledger.sharing.requests import Scope, request_overdue
from ledger.store.models import ShareRequest
from ledger.types import RequestStatus, Signing

router = APIRouter(tags=["sharing"])


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PurposeIn(Strict):
    code: str = Field(min_length=1, max_length=64, description="see GET /v1/purposes")
    text: str = Field(default="", max_length=2000, description="free text; only its hash goes on chain")


class ScopeIn(Strict):
    fields: list[str] = Field(min_length=1, max_length=500)
    valid_from: datetime
    valid_until: datetime
    mode: AccessMode = AccessMode.RAW
    max_records: int = Field(default=1000, ge=1, le=10_000_000)
    max_accesses: int = Field(default=100, ge=1, le=4_000_000_000)
    row_filter: dict[str, Any] = Field(default_factory=dict)

    def scope(self) -> Scope:
        return Scope(
            fields=self.fields,
            valid_from=self.valid_from,
            valid_until=self.valid_until,
            mode=self.mode,
            max_records=self.max_records,
            max_accesses=self.max_accesses,
            row_filter=self.row_filter,
        )


class RequestIn(Strict):
    resource_id: str
    purpose: PurposeIn
    legal_basis: str = Field(min_length=1, max_length=2000, description="履职依据")
    scope: ScopeIn
    signing: Signing = Signing.CUSTODIAL


class SignatureIn(Strict):
    signature: str = Field(pattern=r"^0x[0-9a-fA-F]{130}$")


class DecisionIn(Strict):
    approve: bool
    reason: str = Field(default="", max_length=4000)
    conditions: ScopeIn | None = None
    signing: Signing = Signing.CUSTODIAL


class RevokeIn(Strict):
    reason: str = Field(min_length=1, max_length=4000)


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
        default=None, description="EIP-712 document to sign (client mode)"
    )

    @classmethod
    def of(cls, row: ShareRequest) -> RequestOut:
        typed: dict[str, Any] | None = None
        if row.status is RequestStatus.AWAITING_SIGNATURE:
            typed = json.loads(row.request_typed_data)
        elif row.status is RequestStatus.AWAITING_DECISION_SIGNATURE and row.decision_typed_data:
            typed = json.loads(row.decision_typed_data)
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
    return RequestOut.of(row)


@router.get("/v1/share-requests", response_model=list[RequestOut])
def find(caller: CurrentParty, ledger: LedgerDep, status: str | None = None) -> list[RequestOut]:
    return [RequestOut.of(r) for r in ledger.sharing.find(caller, status)]


@router.get("/v1/share-requests/{request_id}", response_model=RequestOut)
def read(request_id: str, caller: CurrentParty, ledger: LedgerDep) -> RequestOut:
    return RequestOut.of(ledger.sharing.get(caller, request_id))


@router.post("/v1/share-requests/{request_id}/signature", response_model=RequestOut)
def sign_request(request_id: str, body: SignatureIn, caller: CurrentParty, ledger: LedgerDep) -> RequestOut:
    return RequestOut.of(ledger.sharing.submit_signature(caller, request_id, body.signature))


@router.post("/v1/share-requests/{request_id}/decision", response_model=RequestOut)
def decide(request_id: str, body: DecisionIn, caller: CurrentParty, ledger: LedgerDep) -> RequestOut:
    conditions = body.conditions.scope() if body.conditions else None
    row = ledger.sharing.decide(
        caller,
        request_id,
        approve=body.approve,
        reason=body.reason,
        conditions=conditions,
        signing=body.signing,
    )
    return RequestOut.of(row)


@router.post("/v1/share-requests/{request_id}/decision/signature", response_model=RequestOut)
def sign_decision(request_id: str, body: SignatureIn, caller: CurrentParty, ledger: LedgerDep) -> RequestOut:
    return RequestOut.of(ledger.sharing.decision_signature(caller, request_id, body.signature))


@router.post("/v1/share-requests/{request_id}/cosign", response_model=RequestOut)
def cosign(request_id: str, caller: CurrentParty, ledger: LedgerDep) -> RequestOut:
    return RequestOut.of(ledger.sharing.cosign(caller, request_id))


@router.get("/v1/grants/{grant_id}")
def grant(grant_id: str, caller: CurrentParty, ledger: LedgerDep) -> dict[str, Any]:
    return ledger.sharing.grant(caller, grant_id)


@router.post("/v1/grants/{grant_id}/revoke")
def revoke(grant_id: str, body: RevokeIn, caller: CurrentParty, ledger: LedgerDep) -> dict[str, Any]:
    return ledger.sharing.revoke(caller, grant_id, body.reason)
