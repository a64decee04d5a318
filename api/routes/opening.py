"""Opening data to enterprises: open contracts (契约式开放), applications (依申请开放), the negative
list (负面清单) and usage declarations (derived products).

Signing works as for share requests: ``"signing": "custodial"`` or ``"client"`` — then the response
carries ``typed_data`` and ``sign_at``, the path to POST ``{"signature": "0x…"}`` to.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from api.deps import CurrentParty, LedgerDep
from api.routing import Route
from ledger.log.events import AccessMode
from ledger.opening.declarations import view as declaration_view
from ledger.types import ContractAction, ContractStatus, Obligation, ReleaseMode, Signing

router = APIRouter(tags=["opening"], route_class=Route)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ResourceScopeIn(Strict):
    fields: list[str] = Field(min_length=1, max_length=500)
    mode: AccessMode = AccessMode.MASKED
    max_records: int = Field(default=1000, ge=1, le=100_000)
    row_filter: dict[str, Any] = Field(default_factory=dict)


class ContractIn(Strict):
    enterprise_id: str = Field(min_length=1, max_length=64)
    resources: list[str] = Field(min_length=1, max_length=32)
    purposes: list[str] = Field(min_length=1, max_length=32, description="purpose codes (GET /v1/purposes)")
    scope: dict[str, ResourceScopeIn] = Field(description="per resource id: the terms it is opened on")
    valid_from: datetime
    valid_until: datetime
    obligations: list[Obligation] | None = Field(default=None, description="default: all four")
    terms_hash: str = Field(description="SHA-256 or keccak256 of the signed terms document, 0x + 64 hex")
    terms_uri: str | None = Field(default=None, max_length=2000)
    signing: Signing = Signing.CUSTODIAL


class SigningIn(Strict):
    signing: Signing = Signing.CUSTODIAL


class SignatureIn(Strict):
    signature: str = Field(pattern=r"^0x[0-9a-fA-F]{130}$")


class StatusIn(Strict):
    reason: str = Field(min_length=1, max_length=4000)
    signing: Signing = Signing.CUSTODIAL


class PurposeIn(Strict):
    code: str = Field(min_length=1, max_length=64)
    text: str = Field(default="", max_length=2000)


class QualificationIn(Strict):
    name: str = Field(min_length=1, max_length=200, description="e.g. 营业执照, 数据安全资质证书")
    sha256: str = Field(pattern=r"^0x[0-9a-f]{64}$", description="SHA-256 of the document")


class ApplicationIn(Strict):
    resource_id: str = Field(min_length=1, max_length=64)
    purpose: PurposeIn
    scope: ResourceScopeIn
    qualifications: list[QualificationIn] = Field(min_length=1, max_length=20)
    valid_from: datetime
    valid_until: datetime
    signing: Signing = Signing.CUSTODIAL


class ReviewIn(Strict):
    approve: bool
    reason: str = Field(default="", max_length=4000)
    signing: Signing = Signing.CUSTODIAL


class ListingIn(Strict):
    resource_id: str = Field(min_length=1, max_length=64)
    listed: bool = True
    reason: str = Field(min_length=1, max_length=4000)


class DeclarationIn(Strict):
    contract_id: str = Field(min_length=66, max_length=66)
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    inputs: list[Annotated[int, Field(ge=0, le=2**48)]] = Field(
        min_length=1, max_length=1000, description="log indices of the input accesses"
    )
    purpose: str = Field(min_length=1, max_length=64, description="the declared use, a purpose code")
    release_mode: ReleaseMode


def _contract(view: dict[str, Any]) -> dict[str, Any]:
    return {
        **view,
        "sign_at": None if view["typed_data"] is None else f"/v1/open-contracts/{view['id']}/signature",
    }


def _application(view: dict[str, Any]) -> dict[str, Any]:
    sign_at = None if view["typed_data"] is None else f"/v1/open-applications/{view['id']}/signature"
    return {**view, "sign_at": sign_at}


# -- contracts -------------------------------------------------------------------------------------
@router.post(
    "/v1/open-contracts", status_code=status.HTTP_201_CREATED, summary="Propose a contract (operator)"
)
def propose(body: ContractIn, caller: CurrentParty, ledger: LedgerDep) -> dict[str, Any]:
    service = ledger.open_contracts
    row = service.propose(
        caller,
        enterprise_id=body.enterprise_id,
        resources=body.resources,
        purpose_codes=body.purposes,
        scope={rid: s.model_dump() for rid, s in body.scope.items()},
        valid_from=body.valid_from,
        valid_until=body.valid_until,
        obligations=body.obligations,
        terms_hash=body.terms_hash,
        terms_uri=body.terms_uri,
        signing=body.signing,
    )
    return _contract(service.view(row, caller))


@router.get("/v1/open-contracts", summary="Contracts the caller is a party to (all, for supervisors)")
def contracts(
    caller: CurrentParty, ledger: LedgerDep, status: ContractStatus | None = None
) -> list[dict[str, Any]]:
    service = ledger.open_contracts
    return [_contract(service.view(r, caller)) for r in service.visible_to(caller, status)]


@router.get("/v1/open-contracts/{contract_id}")
def contract(contract_id: str, caller: CurrentParty, ledger: LedgerDep) -> dict[str, Any]:
    service = ledger.open_contracts
    return _contract(service.view(service.get(caller, contract_id), caller))


@router.post("/v1/open-contracts/{contract_id}/sign", summary="Sign as the enterprise or a provider")
def sign(
    contract_id: str, caller: CurrentParty, ledger: LedgerDep, body: SigningIn | None = None
) -> dict[str, Any]:
    service = ledger.open_contracts
    row = service.sign(caller, contract_id, body.signing if body else Signing.CUSTODIAL)
    return _contract(service.view(row, caller))


@router.post("/v1/open-contracts/{contract_id}/signature", summary="Submit a client-mode signature")
def signature(contract_id: str, body: SignatureIn, caller: CurrentParty, ledger: LedgerDep) -> dict[str, Any]:
    service = ledger.open_contracts
    return _contract(service.view(service.submit_signature(caller, contract_id, body.signature), caller))


def _change(action: ContractAction) -> Any:
    def change(contract_id: str, body: StatusIn, caller: CurrentParty, ledger: LedgerDep) -> dict[str, Any]:
        service = ledger.open_contracts
        row = service.change_status(caller, contract_id, action, body.reason, body.signing)
        return _contract(service.view(row, caller))

    return change


for _action in ContractAction:
    _verb = _action.name.lower()
    router.add_api_route(
        f"/v1/open-contracts/{{contract_id}}/{_verb}",
        _change(_action),
        methods=["POST"],
        name=f"{_verb}_contract",
        summary=f"{_verb.capitalize()} a contract with a reason (its operator or the registrar)",
    )


# -- applications ----------------------------------------------------------------------------------
@router.post(
    "/v1/open-applications", status_code=status.HTTP_201_CREATED, summary="Apply for on-application data"
)
def apply(body: ApplicationIn, caller: CurrentParty, ledger: LedgerDep) -> dict[str, Any]:
    service = ledger.applications
    row = service.submit(
        caller,
        resource_id=body.resource_id,
        purpose_code=body.purpose.code,
        purpose_text=body.purpose.text,
        scope=body.scope.model_dump(),
        qualifications=[q.model_dump() for q in body.qualifications],
        valid_from=body.valid_from,
        valid_until=body.valid_until,
        signing=body.signing,
    )
    return _application(service.view(row, caller))


@router.get("/v1/open-applications", summary="Applications (status=pending|overdue|approved|rejected|…)")
def applications(caller: CurrentParty, ledger: LedgerDep, status: str | None = None) -> list[dict[str, Any]]:
    service = ledger.applications
    return [_application(service.view(r, caller)) for r in service.visible_to(caller, status)]


@router.get("/v1/open-applications/{application_id}")
def application(application_id: str, caller: CurrentParty, ledger: LedgerDep) -> dict[str, Any]:
    service = ledger.applications
    return _application(service.view(service.get(caller, application_id), caller))


@router.post("/v1/open-applications/{application_id}/review", summary="Review (provider, operator)")
def review(application_id: str, body: ReviewIn, caller: CurrentParty, ledger: LedgerDep) -> dict[str, Any]:
    service = ledger.applications
    row = service.review(
        caller, application_id, approve=body.approve, reason=body.reason, signing=body.signing
    )
    return _application(service.view(row, caller))


@router.post("/v1/open-applications/{application_id}/signature", summary="Submit a client-mode signature")
def application_signature(
    application_id: str, body: SignatureIn, caller: CurrentParty, ledger: LedgerDep
) -> dict[str, Any]:
    service = ledger.applications
    return _application(
        service.view(service.submit_signature(caller, application_id, body.signature), caller)
    )


# -- negative list ---------------------------------------------------------------------------------
@router.get("/v1/negative-list", summary="Resources on the negative list (负面清单)")
def negative_list(caller: CurrentParty, ledger: LedgerDep) -> list[dict[str, Any]]:
    return [
        {
            "resource_id": r.resource_id,
            "reason": r.reason,
            "listed_by": r.by_id,
            "tx_hash": r.tx_hash,
            "updated_at": r.updated_at,
        }
        for r in ledger.negative_list.entries()
    ]


@router.post("/v1/negative-list", summary="List or delist a resource (registrar)")
def set_listing(body: ListingIn, caller: CurrentParty, ledger: LedgerDep) -> dict[str, Any]:
    row = ledger.negative_list.set(caller, body.resource_id, body.listed, body.reason)
    return {
        "resource_id": row.resource_id,
        "listed": row.listed,
        "reason": row.reason,
        "tx_hash": row.tx_hash,
        "updated_at": row.updated_at,
    }


# -- usage declarations ----------------------------------------------------------------------------
@router.post("/v1/declarations", status_code=status.HTTP_201_CREATED, summary="Declare a derived product")
def declare(body: DeclarationIn, caller: CurrentParty, ledger: LedgerDep) -> dict[str, Any]:
    row = ledger.declarations.declare(
        caller,
        contract_id=body.contract_id,
        name=body.name,
        description=body.description,
        inputs=body.inputs,
        purpose=body.purpose,
        release_mode=body.release_mode,
    )
    return declaration_view(row)


@router.get("/v1/declarations", summary="Derived products declared (own, or all for supervisors)")
def declarations(
    caller: CurrentParty, ledger: LedgerDep, contract: str | None = None
) -> list[dict[str, Any]]:
    return [declaration_view(r) for r in ledger.declarations.visible_to(caller, contract)]


@router.get("/v1/declarations/{declaration_id}")
def declaration(declaration_id: str, caller: CurrentParty, ledger: LedgerDep) -> dict[str, Any]:
    return declaration_view(ledger.declarations.get(caller, declaration_id))
