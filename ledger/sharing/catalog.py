"""The catalog (数据资源目录): resources, their versions, and each version's hash on chain.

Rules implemented here:
- 谁拥有谁定级: only a department publishes entries, for data it owns, and sets their level;
- 一数一源: one resource, one provider — a second registration of the same code by another
  department is refused (and the contract refuses a version of a resource by anyone but its provider);
- each version's metadata hash (keccak256 of the RFC 8785 canonical metadata) is registered on chain
  with the provider's EIP-712 signature, relayed by the platform.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from sqlalchemy import select
from web3.contract.contract import Contract

from ledger.canonical import canonical_json
from ledger.chain.client import Chain
from ledger.errors import Conflict, Forbidden, InvalidInput, NotFound
from ledger.identity.parties import PartyService
from ledger.sharing import eip712
from ledger.store.db import Store
from ledger.store.models import Party, Resource, ResourceVersion
from ledger.types import MaskingRule, OpenType, PartyKind, ShareType


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: str = "string"
    sensitive: bool = False
    masking: MaskingRule = MaskingRule.NONE


@dataclass(frozen=True)
class ResourceSpec:
    code: str
    name: str
    format: str
    share_type: ShareType
    open_type: OpenType
    level: int
    update_frequency: str
    legal_basis: str
    fields: list[FieldSpec] = field(default_factory=list)
    description: str = ""

    def metadata(self) -> dict[str, Any]:
        data = asdict(self)
        data["share_type"] = self.share_type.value
        data["open_type"] = self.open_type.value
        data["fields"] = [{**asdict(f), "masking": f.masking.value} for f in self.fields]
        return data

    def validate(self) -> None:
        if not 1 <= self.level <= 4:
            raise InvalidInput("level must be 1-4 (分级)", code="invalid_level")
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise InvalidInput("field names must be unique", code="duplicate_field")
        for f in self.fields:
            if f.masking is not MaskingRule.NONE and not f.sensitive:
                raise InvalidInput(
                    f"field {f.name!r} has a masking rule but is not sensitive", code="invalid_field"
                )
            if f.sensitive and f.masking is MaskingRule.NONE:
                raise InvalidInput(f"sensitive field {f.name!r} needs a masking rule", code="invalid_field")


def resource_id_bytes32(resource_id: str) -> bytes:
    return bytes(16) + bytes.fromhex(resource_id)


class CatalogService:
    def __init__(
        self, *, store: Store, chain: Chain, contract: Contract, parties: PartyService, relayer: LocalAccount
    ) -> None:
        self.store = store
        self.chain = chain
        self.contract = contract
        self.parties = parties
        self.relayer = relayer

    def _register_on_chain(
        self, provider: Party, resource_id: str, spec: ResourceSpec, digest: bytes, version: int
    ) -> str:
        signer = self.parties.signer(provider)
        nonce = int(self.chain.call(self.contract.functions.nonces(provider.address)))
        document = eip712.typed_data(
            "ResourceVersion",
            {
                "resourceId": resource_id_bytes32(resource_id),
                "provider": provider.address,
                "level": spec.level,
                "shareType": spec.share_type.chain_value,
                "openType": spec.open_type.chain_value,
                "metadataHash": digest,
                "version": version,
                "nonce": nonce,
            },
            chain_id=self.chain.chain_id,
            contract=self.contract.address,
        )
        signature = eip712.sign(signer, document)
        fn = self.contract.functions.registerResource(eip712.as_tuple(document), signature)
        return self.chain.transact(fn, self.relayer).tx_hash

    def create(self, caller: Party, spec: ResourceSpec) -> Resource:
        if caller.kind is not PartyKind.DEPARTMENT:
            raise Forbidden(
                "only a department publishes catalog entries (谁拥有谁定级)", code="forbidden_role"
            )
        spec.validate()
        with self.store.read() as session:
            existing = session.scalar(select(Resource).where(Resource.code == spec.code))
        if existing is not None:
            if existing.provider_id != caller.id:
                raise Conflict(
                    f"resource code {spec.code} is already provided by another department (一数一源)",
                    code="resource_code_taken",
                )
            raise Conflict(
                f"you already registered {spec.code} as {existing.id}; PUT a new version",
                code="resource_exists",
            )
        resource_id = uuid.uuid4().hex
        metadata = spec.metadata()
        digest = keccak(canonical_json(metadata))
        tx_hash = self._register_on_chain(caller, resource_id, spec, digest, 1)
        now = datetime.now(UTC)
        resource = Resource(
            id=resource_id,
            code=spec.code,
            provider_id=caller.id,
            name=spec.name,
            version=1,
            share_type=spec.share_type,
            open_type=spec.open_type,
            level=spec.level,
            metadata_json=json.dumps(metadata, ensure_ascii=False),
            metadata_hash=digest,
            tx_hash=tx_hash,
            created_at=now,
            updated_at=now,
        )
        with self.store.session() as session:
            session.add(resource)
            session.add(
                ResourceVersion(
                    resource_id=resource_id,
                    version=1,
                    metadata_json=resource.metadata_json,
                    metadata_hash=digest,
                    tx_hash=tx_hash,
                    created_at=now,
                )
            )
        return resource

    def update(self, caller: Party, resource_id: str, spec: ResourceSpec) -> Resource:
        current = self.get(resource_id)
        if current.provider_id != caller.id:
            raise Forbidden("only the resource's provider publishes new versions", code="not_provider")
        if spec.code != current.code:
            raise InvalidInput("a resource's code cannot change", code="code_immutable")
        spec.validate()
        version = current.version + 1
        metadata = spec.metadata()
        digest = keccak(canonical_json(metadata))
        tx_hash = self._register_on_chain(caller, resource_id, spec, digest, version)
        now = datetime.now(UTC)
        with self.store.session() as session:
            row = session.get(Resource, resource_id)
            assert row is not None
            row.name, row.version, row.share_type, row.open_type, row.level = (
                spec.name,
                version,
                spec.share_type,
                spec.open_type,
                spec.level,
            )
            row.metadata_json = json.dumps(metadata, ensure_ascii=False)
            row.metadata_hash, row.tx_hash, row.updated_at = digest, tx_hash, now
            session.add(
                ResourceVersion(
                    resource_id=resource_id,
                    version=version,
                    metadata_json=row.metadata_json,
                    metadata_hash=digest,
                    tx_hash=tx_hash,
                    created_at=now,
                )
            )
            current = row
        return current

    def get(self, resource_id: str) -> Resource:
        with self.store.read() as session:
            resource = session.get(Resource, resource_id)
        if resource is None:
            raise NotFound(f"no resource {resource_id}", code="resource_not_found")
        return resource

    def find(
        self,
        *,
        provider: str | None = None,
        share_type: ShareType | None = None,
        open_type: OpenType | None = None,
        level: int | None = None,
    ) -> list[Resource]:
        query = select(Resource).order_by(Resource.code)
        if provider:
            query = query.where(Resource.provider_id == provider)
        if share_type:
            query = query.where(Resource.share_type == share_type)
        if open_type:
            query = query.where(Resource.open_type == open_type)
        if level:
            query = query.where(Resource.level == level)
        with self.store.read() as session:
            return list(session.scalars(query))

    def versions(self, resource_id: str) -> list[ResourceVersion]:
        self.get(resource_id)
        with self.store.read() as session:
            return list(
                session.scalars(
                    select(ResourceVersion)
                    .where(ResourceVersion.resource_id == resource_id)
                    .order_by(ResourceVersion.version)
                )
            )
