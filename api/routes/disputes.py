"""Disputed data (疑义数据校核): file, answer (confirm or correct), list."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from api.deps import CurrentParty, LedgerDep
from api.routes.resources import ResourceIn, SignatureIn
from api.routing import Route
from ledger.sharing.disputes import dispute_overdue, pending_dispute_document
from ledger.store.models import Dispute, Party
from ledger.types import Signing

router = APIRouter(prefix="/v1/disputes", tags=["sharing"], route_class=Route)


class DisputeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resource_id: str
    version: int | None = Field(default=None, ge=1, le=2**31, description="default: the current version")
    reason: str = Field(min_length=1, max_length=4000)
    signing: Signing = Signing.CUSTODIAL


class AnswerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answer: str = Field(min_length=1, max_length=4000)
    correction: ResourceIn | None = Field(
        default=None, description="the corrected entry, if the data was wrong"
    )
    signing: Signing = Signing.CUSTODIAL


class DisputeOut(BaseModel):
    id: str
    resource_id: str
    version: int
    filer_id: str
    provider_id: str
    reason: str
    status: str
    filed_on: date
    respond_by: date
    overdue: bool
    answer: str | None
    corrected: bool
    new_version: int | None
    late: bool
    file_tx: str | None
    answer_tx: str | None
    typed_data: dict[str, Any] | None = Field(
        default=None, description="EIP-712 Dispute / DisputeAnswer the caller is to sign (client mode)"
    )
    sign_at: str | None = None

    @classmethod
    def of(cls, d: Dispute, viewer: Party) -> DisputeOut:
        typed = pending_dispute_document(d, viewer.id)
        sign_at = None
        if typed is not None:
            step = "signature" if typed["primaryType"] == "Dispute" else "answer/signature"
            sign_at = f"/v1/disputes/{d.id}/{step}"
        return cls(
            id=d.id,
            resource_id=d.resource_id,
            version=d.version,
            filer_id=d.filer_id,
            provider_id=d.provider_id,
            reason=d.reason,
            status=d.status,
            filed_on=d.filed_on,
            respond_by=d.respond_by,
            overdue=dispute_overdue(d),
            answer=d.answer,
            corrected=d.corrected,
            new_version=d.new_version,
            late=d.late,
            file_tx=d.file_tx,
            answer_tx=d.answer_tx,
            typed_data=typed,
            sign_at=sign_at,
        )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=DisputeOut)
def file(body: DisputeIn, caller: CurrentParty, ledger: LedgerDep) -> DisputeOut:
    row = ledger.disputes.file(caller, body.resource_id, body.reason, body.version, body.signing)
    return DisputeOut.of(row, caller)


@router.get("", response_model=list[DisputeOut])
def find(caller: CurrentParty, ledger: LedgerDep, status: str | None = None) -> list[DisputeOut]:
    return [DisputeOut.of(d, caller) for d in ledger.disputes.find(caller, status)]


@router.get("/{dispute_id}", response_model=DisputeOut)
def read(dispute_id: str, caller: CurrentParty, ledger: LedgerDep) -> DisputeOut:
    return DisputeOut.of(ledger.disputes.get(caller, dispute_id), caller)


@router.post("/{dispute_id}/signature", response_model=DisputeOut)
def sign_filing(dispute_id: str, body: SignatureIn, caller: CurrentParty, ledger: LedgerDep) -> DisputeOut:
    return DisputeOut.of(ledger.disputes.file_signature(caller, dispute_id, body.signature), caller)


@router.post("/{dispute_id}/answer", response_model=DisputeOut)
def answer(dispute_id: str, body: AnswerIn, caller: CurrentParty, ledger: LedgerDep) -> DisputeOut:
    correction = body.correction.spec() if body.correction else None
    row = ledger.disputes.answer(caller, dispute_id, body.answer, correction, body.signing)
    return DisputeOut.of(row, caller)


@router.post("/{dispute_id}/answer/signature", response_model=DisputeOut)
def sign_answer(dispute_id: str, body: SignatureIn, caller: CurrentParty, ledger: LedgerDep) -> DisputeOut:
    return DisputeOut.of(ledger.disputes.answer_signature(caller, dispute_id, body.signature), caller)
