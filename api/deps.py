"""Dependency aliases: the running ledger and the authenticated caller.

Both are ``async``: FastAPI runs a plain ``def`` dependency in the thread pool, a hand-off to a
worker thread and back on every request. The caller is found without blocking when this process
has seen its token and its on-chain status lately (``PartyService.authenticate_cached``); only
otherwise does the lookup go to a worker thread."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from ledger.errors import Unauthorized
from ledger.runtime import Ledger
from ledger.store.models import Party

_bearer = HTTPBearer(auto_error=False, description="the party's API token")


async def get_ledger(request: Request) -> Ledger:
    ledger: Ledger = request.app.state.ledger
    return ledger


LedgerDep = Annotated[Ledger, Depends(get_ledger)]


async def current_party(
    ledger: LedgerDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Party:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthorized("missing bearer token (Authorization: Bearer <token>)", code="missing_token")
    token = credentials.credentials
    party = ledger.parties.authenticate_cached(token)
    if party is None:
        party = await run_in_threadpool(ledger.parties.authenticate, token)
    return party


CurrentParty = Annotated[Party, Depends(current_party)]
