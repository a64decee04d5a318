"""Dependency aliases: the running ledger and the authenticated caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ledger.errors import Unauthorized
from ledger.runtime import Ledger
from ledger.store.models import Party

_bearer = HTTPBearer(auto_error=False, description="the party's API token")


def get_ledger(request: Request) -> Ledger:
    ledger: Ledger = request.app.state.ledger
    return ledger


LedgerDep = Annotated[Ledger, Depends(get_ledger)]


def current_party(
    ledger: LedgerDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Party:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthorized("missing bearer token (Authorization: Bearer <token>)", code="missing_token")
    return ledger.parties.authenticate(credentials.credentials)


CurrentParty = Annotated[Party, Depends(current_party)]
