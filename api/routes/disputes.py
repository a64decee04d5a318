"""Disputed data (疑义数据校核): file, answer (confirm or correct), list."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from api.deps import CurrentParty, LedgerDep
from api.routes.resources import ResourceIn
from ledger.sharing.disputes import dispute_overdue
from ledger.store.models import Dispute

router = APIRouter(prefix="/v1/disputes", tags=["sharing"])


class DisputeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resource_id: str
    version: int | None = Field(default=None, ge=1, description="default: the current version")
    reason: str = Field(min_length=1, max_length=4000)


class AnswerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answer: str = Field(min_length=1, max_length=4000)
    correction: ResourceIn | None = Field(
        default=None, description="the corrected entry, if the data was wrong"
    )


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
    file_tx: str
    answer_tx: str | None

    @classmethod
    def of(cls, d: Dispute) -> DisputeOut:
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
        )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=DisputeOut)
def file(body: DisputeIn, caller: CurrentParty, ledger: LedgerDep) -> DisputeOut:
    return DisputeOut.of(ledger.disputes.file(caller, body.resource_id, body.reason, body.version))


@router.get("", response_model=list[DisputeOut])
def find(caller: CurrentParty, ledger: LedgerDep, status: str | None = None) -> list[DisputeOut]:
    return [DisputeOut.of(d) for d in ledger.disputes.find(caller, status)]


@router.get("/{dispute_id}", response_model=DisputeOut)
def read(dispute_id: str, caller: CurrentParty, ledger: LedgerDep) -> DisputeOut:
    return DisputeOut.of(ledger.disputes.get(caller, dispute_id))


@router.post("/{dispute_id}/answer", response_model=DisputeOut)
def answer(dispute_id: str, body: AnswerIn, caller: CurrentParty, ledger: LedgerDep) -> DisputeOut:
    correction = body.correction.spec() if body.correction else None
    return DisputeOut.of(ledger.disputes.answer(caller, dispute_id, body.answer, correction))
