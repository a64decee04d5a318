"""Parties: registration by the registrar, the directory, suspension."""

from __future__ import annotations

from fastapi import APIRouter, status

from api.deps import CurrentParty, LedgerDep
from api.routing import Route
from api.schemas import PartyCreated, PartyIn, PartyOut, SuspendIn
from ledger.identity.parties import NewParty
from ledger.types import PartyKind

router = APIRouter(prefix="/v1/parties", tags=["parties"], route_class=Route)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=PartyCreated)
def register_party(body: PartyIn, caller: CurrentParty, ledger: LedgerDep) -> PartyCreated:
    party, token = ledger.parties.register(caller, NewParty(body.kind, body.name, body.uscc, body.address))
    return PartyCreated(**PartyOut.model_validate(party).model_dump(), token=token)


@router.get("", response_model=list[PartyOut])
def list_parties(caller: CurrentParty, ledger: LedgerDep, kind: PartyKind | None = None) -> list[PartyOut]:
    return [PartyOut.model_validate(p) for p in ledger.parties.list(kind)]


@router.get("/me", response_model=PartyOut)
def me(caller: CurrentParty) -> PartyOut:
    return PartyOut.model_validate(caller)


@router.get("/{party_id}", response_model=PartyOut)
def get_party(party_id: str, caller: CurrentParty, ledger: LedgerDep) -> PartyOut:
    return PartyOut.model_validate(ledger.parties.get(party_id))


@router.post("/{party_id}/suspend", response_model=PartyOut)
def suspend(party_id: str, body: SuspendIn, caller: CurrentParty, ledger: LedgerDep) -> PartyOut:
    return PartyOut.model_validate(ledger.parties.set_suspended(caller, party_id, True, body.reason))


@router.post("/{party_id}/reinstate", response_model=PartyOut)
def reinstate(party_id: str, caller: CurrentParty, ledger: LedgerDep) -> PartyOut:
    return PartyOut.model_validate(ledger.parties.set_suspended(caller, party_id, False))
