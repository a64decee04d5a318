"""The catalog (数据资源目录): publish, version, browse."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, ConfigDict, Field

from api.deps import CurrentParty, LedgerDep
from api.routing import Route
from api.schemas import UtcTime
from ledger.sharing.catalog import FieldSpec, ResourceSpec, is_published, pending_of
from ledger.store.models import Party, Resource
from ledger.types import MaskingRule, OpenType, ShareType, Signing

router = APIRouter(prefix="/v1/resources", tags=["catalog"], route_class=Route)


class FieldIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    type: str = Field(default="string", max_length=32)
    sensitive: bool = False
    masking: MaskingRule = MaskingRule.NONE


class ResourceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    name: str = Field(min_length=1, max_length=200)
    format: str = Field(min_length=1, max_length=32, description="table, file, api, …")
    fields: list[FieldIn] = Field(default_factory=list, max_length=500)
    share_type: ShareType
    open_type: OpenType
    level: int = Field(ge=1, le=4, description="分级 1-4")
    update_frequency: str = Field(min_length=1, max_length=32)
    legal_basis: str = Field(min_length=1, max_length=2000)
    description: str = Field(default="", max_length=4000)

    def spec(self) -> ResourceSpec:
        return ResourceSpec(
            code=self.code,
            name=self.name,
            format=self.format,
            share_type=self.share_type,
            open_type=self.open_type,
            level=self.level,
            update_frequency=self.update_frequency,
            legal_basis=self.legal_basis,
            description=self.description,
            fields=[FieldSpec(f.name, f.type, f.sensitive, f.masking) for f in self.fields],
        )


class PublishIn(ResourceIn):
    signing: Signing = Field(
        default=Signing.CUSTODIAL,
        description='"client": the response carries the ResourceVersion typed_data; POST its signature',
    )


class SignatureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    signature: str = Field(pattern=r"^0x[0-9a-fA-F]{130}$")


class ResourceOut(BaseModel):
    id: str
    code: str
    provider_id: str
    version: int = Field(description="the version on chain; 0 while the first awaits its signature")
    published: bool
    metadata_hash: str
    tx_hash: str | None
    created_at: UtcTime
    updated_at: UtcTime
    metadata: dict[str, Any]
    pending_version: int | None = Field(default=None, description="a version awaiting its signature")
    typed_data: dict[str, Any] | None = Field(
        default=None, description="EIP-712 ResourceVersion the caller (the provider) is to sign"
    )
    sign_at: str | None = None

    @classmethod
    def of(cls, r: Resource, viewer: Party) -> ResourceOut:
        pending = pending_of(r)
        typed = pending["typed_data"] if pending is not None and viewer.id == r.provider_id else None
        return cls(
            id=r.id,
            code=r.code,
            provider_id=r.provider_id,
            version=r.version,
            metadata_hash="0x" + r.metadata_hash.hex(),
            tx_hash=r.tx_hash,
            created_at=r.created_at,
            updated_at=r.updated_at,
            metadata=json.loads(r.metadata_json),
            published=is_published(r),
            pending_version=None if pending is None else int(pending["typed_data"]["message"]["version"]),
            typed_data=typed,
            sign_at=None if typed is None else f"/v1/resources/{r.id}/signature",
        )


class VersionOut(BaseModel):
    version: int
    metadata_hash: str
    tx_hash: str | None
    created_at: UtcTime
    metadata: dict[str, Any]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ResourceOut)
def publish(body: PublishIn, caller: CurrentParty, ledger: LedgerDep) -> ResourceOut:
    return ResourceOut.of(ledger.catalog.create(caller, body.spec(), body.signing), caller)


@router.get("", response_model=list[ResourceOut])
def browse(
    caller: CurrentParty,
    ledger: LedgerDep,
    provider: str | None = None,
    share_type: ShareType | None = None,
    open_type: OpenType | None = None,
    level: Annotated[int | None, Query(ge=1, le=4)] = None,
) -> list[ResourceOut]:
    found = ledger.catalog.find(provider=provider, share_type=share_type, open_type=open_type, level=level)
    return [ResourceOut.of(r, caller) for r in found]


@router.get("/{resource_id}", response_model=ResourceOut)
def read(resource_id: str, caller: CurrentParty, ledger: LedgerDep) -> ResourceOut:
    return ResourceOut.of(ledger.catalog.get(resource_id), caller)


@router.put("/{resource_id}", response_model=ResourceOut)
def new_version(resource_id: str, body: PublishIn, caller: CurrentParty, ledger: LedgerDep) -> ResourceOut:
    return ResourceOut.of(ledger.catalog.update(caller, resource_id, body.spec(), body.signing), caller)


@router.post("/{resource_id}/signature", response_model=ResourceOut)
def sign_version(resource_id: str, body: SignatureIn, caller: CurrentParty, ledger: LedgerDep) -> ResourceOut:
    """Client mode: the provider's signature of the pending version's ``typed_data``."""
    return ResourceOut.of(ledger.catalog.submit_signature(caller, resource_id, body.signature), caller)


@router.get("/{resource_id}/versions", response_model=list[VersionOut])
def versions(resource_id: str, caller: CurrentParty, ledger: LedgerDep) -> list[VersionOut]:
    return [
        VersionOut(
            version=v.version,
            metadata_hash="0x" + v.metadata_hash.hex(),
            tx_hash=v.tx_hash,
            created_at=v.created_at,
            metadata=json.loads(v.metadata_json),
        )
        for v in ledger.catalog.versions(resource_id)
    ]
