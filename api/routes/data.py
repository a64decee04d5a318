"""The data gateway: data sources and mediated access (``GET``/``POST /v1/data/{resource_id}``).

The response carries ``X-Access-Event`` (the access's log index — the event is durable before the
first byte), ``X-Result-Hash`` (SHA-256 of exactly the delivered bytes), ``X-Record-Count``. A
refused access is answered 403 with its reason code and is in the log too (``access_event``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.deps import CurrentParty, LedgerDep
from api.routing import Route
from ledger.errors import InvalidInput
from ledger.gateway.query import load_row_filter
from ledger.gateway.service import AccessRequest, Delivery
from ledger.gateway.sources import SourceKind, SourceSpec

router = APIRouter(tags=["gateway"], route_class=Route)

NDJSON = "application/x-ndjson"


class SourceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: SourceKind
    location: str = Field(min_length=1, max_length=2000, description="file path, or a SQLAlchemy URL")
    table: str | None = Field(default=None, max_length=128)
    query: str | None = Field(default=None, max_length=20_000, description="one read-only SELECT")


class AccessIn(BaseModel):
    """The POST form of an access (for long field lists, filters or subject lists).

    The mode is the grant's: ``fields``/``limit``/``format`` apply to raw and masked, ``group_by``/
    ``metrics`` to aggregate, ``subjects``/``key`` to verify, ``filter`` to all; any other is refused
    (422 ``parameter_not_applicable``)."""

    model_config = ConfigDict(extra="forbid")
    grant: str | None = Field(default=None, max_length=80)
    contract: str | None = Field(default=None, max_length=80, description="an open contract (enterprises)")
    fields: list[Annotated[str, Field(max_length=64)]] | None = Field(default=None, max_length=256)
    filter: dict[str, Any] | None = Field(default=None, description="row filter, narrower than the grant's")
    limit: int | None = Field(default=None, ge=1, le=10_000_000)
    group_by: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=16)
    metrics: list[Annotated[str, Field(max_length=80)]] = Field(
        default_factory=list, max_length=32, description='aggregate grants only; default ["count"]'
    )
    subjects: list[Annotated[str, Field(max_length=128)]] = Field(default_factory=list, max_length=1000)
    key: str | None = Field(default=None, max_length=64)
    purpose: str | None = Field(
        default=None,
        max_length=64,
        description="for open resources and contracts; under a grant, if given, the grant's own purpose",
    )
    format: Literal["json", "ndjson"] = "json"

    def request(self, stream: bool) -> AccessRequest:
        return AccessRequest(
            grant=self.grant,
            contract=self.contract,
            fields=self.fields,
            row_filter=self.filter,
            limit=self.limit,
            group_by=self.group_by,
            metrics=self.metrics,
            subjects=self.subjects,
            key=self.key,
            purpose=self.purpose,
            stream=stream or self.format == "ndjson",
        )


def _split(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def _respond(delivery: Delivery) -> Response:
    headers = {
        "X-Access-Event": str(delivery.index),
        "X-Result-Hash": delivery.result_hash,
        "X-Record-Count": str(delivery.record_count),
        "X-Truncated": "true" if delivery.truncated else "false",
        "Cache-Control": "no-store",
    }
    if delivery.stream is not None:
        return StreamingResponse(delivery.chunks(), media_type=NDJSON, headers=headers)
    return Response(content=delivery.body, media_type=delivery.media_type, headers=headers)


def _wants_ndjson(request: Request) -> bool:
    return NDJSON in request.headers.get("accept", "")


@router.put("/v1/resources/{resource_id}/source", summary="Register the resource's data source (provider)")
def put_source(ledger: LedgerDep, caller: CurrentParty, resource_id: str, body: SourceIn) -> dict[str, Any]:
    spec = SourceSpec(kind=body.kind, location=body.location, table=body.table, query=body.query)
    return ledger.gateway.register_source(caller, resource_id, spec)


@router.get("/v1/resources/{resource_id}/source", summary="The resource's data source (password hidden)")
def get_source(ledger: LedgerDep, caller: CurrentParty, resource_id: str) -> dict[str, Any]:
    return ledger.gateway.source(caller, resource_id)


@router.get(
    "/v1/data/{resource_id}",
    summary="Mediated data under a grant or an open contract (logged before it is returned)",
    responses={200: {"content": {"application/json": {}, NDJSON: {}}}},
)
def get_data(
    ledger: LedgerDep,
    caller: CurrentParty,
    request: Request,
    resource_id: str,
    grant: Annotated[str | None, Query(max_length=80)] = None,
    contract: Annotated[str | None, Query(max_length=80)] = None,
    fields: Annotated[
        str | None, Query(max_length=8000, description="comma-separated; raw and masked")
    ] = None,
    filter: Annotated[str | None, Query(max_length=8000, description="row filter as JSON")] = None,
    limit: Annotated[int | None, Query(ge=1, le=10_000_000, description="raw and masked")] = None,
    group_by: Annotated[str | None, Query(max_length=2000, description="aggregate; comma-separated")] = None,
    metrics: Annotated[str | None, Query(max_length=2000, description="aggregate; default count")] = None,
    subjects: Annotated[str | None, Query(max_length=20_000, description="verify; comma-separated")] = None,
    key: Annotated[str | None, Query(max_length=64, description="verify")] = None,
    purpose: Annotated[
        str | None, Query(max_length=64, description="open resources and contracts; or the grant's own")
    ] = None,
    format: Literal["json", "ndjson"] = "json",
) -> Response:
    row_filter = load_row_filter(filter) if filter is not None else None
    try:
        access = AccessIn(
            grant=grant,
            contract=contract,
            fields=_split(fields),
            filter=row_filter,
            limit=limit,
            group_by=_split(group_by) or [],
            metrics=_split(metrics) or [],
            subjects=_split(subjects) or [],
            key=key,
            purpose=purpose,
            format=format,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "query"
        raise InvalidInput(f"{where}: {first.get('msg')}", code="validation_failed") from None
    delivery = ledger.gateway.access(caller, resource_id, access.request(_wants_ndjson(request)))
    return _respond(delivery)


@router.post(
    "/v1/data/{resource_id}",
    summary="Mediated data, POST form for larger queries",
    responses={200: {"content": {"application/json": {}, NDJSON: {}}}},
)
def post_data(
    ledger: LedgerDep, caller: CurrentParty, request: Request, resource_id: str, body: AccessIn
) -> Response:
    if request.query_params:  # ?grant=… beside a body used to be dropped: a "no grant" denial, logged
        names = ", ".join(sorted(set(request.query_params.keys())))
        raise InvalidInput(
            f"POST /v1/data takes its parameters in the JSON body only, not in the query ({names})",
            code="query_not_read",
        )
    delivery = ledger.gateway.access(caller, resource_id, body.request(_wants_ndjson(request)))
    return _respond(delivery)
