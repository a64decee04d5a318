"""The verifiable access log: checkpoints, proofs, entries, gateway batches, proof bundles."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, status
from pydantic import BaseModel

from api.deps import CurrentParty, LedgerDep
from ledger.log.events import AccessEvent

router = APIRouter(tags=["log"])

Index = Annotated[int, Query(ge=0, le=2**48)]
Size = Annotated[int, Query(ge=1, le=2**48)]


class RecordedOut(BaseModel):
    event_id: str
    index: int
    duplicate: bool


@router.get("/v1/log/checkpoint", summary="Latest anchored checkpoint (JSON and C2SP signed note)")
def checkpoint(ledger: LedgerDep, caller: CurrentParty) -> dict[str, Any]:
    return ledger.log.checkpoint()


@router.get("/v1/log/proof/inclusion", summary="RFC 9162 inclusion proof")
def inclusion(ledger: LedgerDep, caller: CurrentParty, index: Index, tree_size: Size) -> dict[str, Any]:
    return ledger.log.inclusion(index, tree_size)


@router.get("/v1/log/proof/consistency", summary="RFC 9162 consistency proof")
def consistency(ledger: LedgerDep, caller: CurrentParty, first: Size, second: Size) -> dict[str, Any]:
    return ledger.log.consistency(first, second)


@router.get("/v1/log/entries", summary="Log entries [start, end) (at most 1000)")
def entries(ledger: LedgerDep, caller: CurrentParty, start: Index, end: Size) -> list[dict[str, Any]]:
    return ledger.log.entries(caller, start, end)


@router.post(
    "/v1/access-events",
    status_code=status.HTTP_201_CREATED,
    response_model=list[RecordedOut],
    summary="Record a batch of access events from an external exchange platform (operator only)",
)
def record_events(
    ledger: LedgerDep, caller: CurrentParty, events: Annotated[list[AccessEvent], Body(max_length=1000)]
) -> list[RecordedOut]:
    recorded = ledger.log.record_gateway_events(caller, events)
    return [RecordedOut(event_id=r.event_id, index=r.index, duplicate=r.duplicate) for r in recorded]


@router.get("/v1/proofs/access/{index}", summary="Proof bundle v1 for one access")
def bundle(
    ledger: LedgerDep, caller: CurrentParty, index: Annotated[int, Path(ge=0, le=2**48)]
) -> dict[str, Any]:
    return ledger.log.bundle(caller, index)
