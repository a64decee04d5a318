"""Health and the read-only JSON-RPC endpoint."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api.deps import LedgerDep
from api.errors import json_body_problem
from api.routing import Route
from api.schemas import Health
from ledger.chain.rpc import PARSE_ERROR, ReadOnlyRPC

router = APIRouter(tags=["system"], route_class=Route)


@router.get("/healthz", response_model=Health)
def healthz(ledger: LedgerDep) -> Health:
    return Health(
        status="ok",
        chain=ledger.chain.kind,
        chain_id=ledger.chain.chain_id,
        block_number=ledger.chain.block_number(),
        database=ledger.store.dialect,
        contracts={name: c.address for name, c in ledger.contracts.items()},
    )


@router.post(
    "/rpc",
    summary="Read-only Ethereum JSON-RPC over the ledger's chain",
    openapi_extra={"requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}}},
)
async def rpc(request: Request, ledger: LedgerDep) -> JSONResponse:
    body = await request.body()
    # JSON-RPC clients do not always label the body: whatever its Content-Type, it is parsed as JSON,
    # so it gets the checks the app's input guard gives JSON bodies (UTF-8, NUL, nesting).
    problem = json_body_problem(body)
    try:
        if problem is not None:
            raise ValueError(problem[1])
        payload: Any = json.loads(body)
    except (ValueError, RecursionError):
        return JSONResponse(
            {"jsonrpc": "2.0", "id": None, "error": {"code": PARSE_ERROR, "message": "parse error"}}
        )
    result = await run_in_threadpool(ReadOnlyRPC(ledger.chain).handle, payload)
    return JSONResponse(result)
