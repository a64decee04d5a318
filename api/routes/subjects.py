"""The data-subject tracker: who accessed data about me, when, for which purpose."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from api.deps import CurrentParty, LedgerDep
from api.routing import Route
from ledger.errors import Unauthorized

router = APIRouter(tags=["subjects"], route_class=Route)
_bearer = HTTPBearer(auto_error=False, description="a subject token issued by the registrar")


class SubjectTokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id_number: str = Field(min_length=15, max_length=18, description="居民身份证号码 (GB 11643)")


def current_subject(
    ledger: LedgerDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> bytes:
    if credentials is None or not credentials.credentials:
        raise Unauthorized("missing subject token (Authorization: Bearer <token>)", code="missing_token")
    return ledger.subjects.authenticate(credentials.credentials)


CurrentSubject = Annotated[bytes, Depends(current_subject)]


@router.post(
    "/v1/subjects/tokens",
    status_code=status.HTTP_201_CREATED,
    summary="Issue a data subject's token after checking their identity (registrar)",
)
def issue_token(ledger: LedgerDep, caller: CurrentParty, body: SubjectTokenIn) -> dict[str, Any]:
    return ledger.subjects.issue_token(caller, body.id_number)


@router.get("/v1/subjects/accesses", summary="Accesses of data about the subject (subject token)")
def accesses(
    ledger: LedgerDep,
    subject: CurrentSubject,
    after: Annotated[int, Query(ge=-1, le=2**48)] = -1,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    return ledger.subjects.accesses(subject, after=after, limit=limit)


@router.get("/v1/subjects/accesses/{index}/bundle", summary="Proof bundle of an access about the subject")
def bundle(
    ledger: LedgerDep, subject: CurrentSubject, index: Annotated[int, Path(ge=0, le=2**48)]
) -> dict[str, Any]:
    return ledger.subjects.bundle(subject, index)
