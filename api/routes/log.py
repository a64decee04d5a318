"""The verifiable access log: checkpoints, proofs, entries, gateway batches, proof bundles."""

from __future__ import annotations

import gzip
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Path, Query, Response, status
from pydantic import BaseModel

from api.deps import CurrentParty, LedgerDep
from api.routing import Route
from ledger.log.events import AccessEvent

router = APIRouter(tags=["log"], route_class=Route)

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


# C2SP tlog-tiles (https://c2sp.org/tlog-tiles) under one prefix, for standard transparency-log
# tooling (witnesses, monitors, mirrors): the signed checkpoint, the hash tiles and the entry
# bundles of the latest anchored tree. docs/log.md, "Tiles for standard tooling".
TLOG = "/v1/log/tlog"
_IMMUTABLE = {"Cache-Control": "private, max-age=31536000, immutable"}
_OCTETS = "application/octet-stream"


@router.get(
    TLOG + "/checkpoint",
    summary="tlog-tiles: the latest anchored checkpoint as a C2SP signed note (text/plain)",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
)
def tlog_checkpoint(ledger: LedgerDep, caller: CurrentParty) -> Response:
    return Response(
        ledger.log.tlog_checkpoint(),
        media_type="text/plain; charset=utf-8",
        headers={"Cache-Control": "private, max-age=2"},
    )


@router.get(
    TLOG + "/tile/entries/{path:path}",
    summary="tlog-tiles: an entry bundle (uint16-length-prefixed entries; regulators, registrar, operator)",
    response_class=Response,
    responses={200: {"content": {_OCTETS: {}}}},
)
def tlog_entries(
    ledger: LedgerDep,
    caller: CurrentParty,
    path: str,
    accept_encoding: Annotated[str, Header()] = "",
) -> Response:
    body = ledger.log.tlog_entries(caller, path)
    headers = {**_IMMUTABLE, "Vary": "Accept-Encoding"}
    if "gzip" in accept_encoding.lower():  # tlog-tiles: bundles SHOULD be compressed over HTTP
        body = gzip.compress(body, compresslevel=6, mtime=0)
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type=_OCTETS, headers=headers)


@router.get(
    TLOG + "/tile/{level:int}/{path:path}",
    summary="tlog-tiles: a tile of Merkle tree hashes (level L holds tree level 8·L)",
    response_class=Response,
    responses={200: {"content": {_OCTETS: {}}}},
)
def tlog_tile(ledger: LedgerDep, caller: CurrentParty, level: int, path: str) -> Response:
    return Response(ledger.log.tlog_tile(level, path), media_type=_OCTETS, headers=_IMMUTABLE)
