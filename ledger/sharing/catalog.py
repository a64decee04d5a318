"""The catalog (数据资源目录): resources, their versions, and each version's hash on chain.

Rules implemented here:
- 谁拥有谁定级: only a department publishes entries, for data it owns, and sets their level;
- 一数一源: one resource, one provider — a second registration of the same code by another
  department is refused (and the contract refuses a version of a resource by anyone but its provider);
- each version's metadata hash (keccak256 of the RFC 8785 canonical metadata) is registered on chain
  with the provider's EIP-712 signature, relayed by the platform: signed by the server for a custodial
  provider, or held with its ``typed_data`` until a client-mode provider POSTs its signature. A first
  version awaiting its signature (``version`` 0) reserves the code but is not in the catalog yet;
- bulk publishing (a department importing its existing catalog): :meth:`CatalogService.create_many`
  checks every item first, then sends up to ``BULK_CHUNK`` first versions per transaction as one
  ``multicall`` of ``registerResource`` calls, each still signed by the provider and checked on chain
  exactly as when sent alone; its rows are the ones :meth:`CatalogService.create` writes.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from sqlalchemy import select
from sqlalchemy.orm import Session
from web3.contract.contract import Contract

from ledger.canonical import canonical_json
from ledger.chain.client import Chain
from ledger.errors import Conflict, Forbidden, InvalidInput, LedgerError, NotFound
from ledger.identity.parties import PartyService
from ledger.sharing.consent import Consent, renonce
from ledger.store.db import Store
from ledger.store.models import Party, Resource, ResourceVersion
from ledger.text import display_text_problem
from ledger.types import MaskingRule, OpenType, PartyKind, ShareType, Signing

# Bulk publishing (create_many). Measured on the embedded chain (solc 0.8.28, optimizer 200, Prague
# rules): registerResource of a new resource costs 136.6k gas alone (153.7k for a provider's first
# signature, whose nonce slot starts at zero) but 108.5k per item inside one multicall of 50-150,
# since the 21k transaction base and the first reads of the registry and of the nonce slot are paid
# once per batch. Each item is allowed BULK_ITEM_GAS (~1.4x that) plus BULK_BASE_GAS per transaction;
# unused gas is not charged.
BULK_ITEM_GAS = 150_000
BULK_BASE_GAS = 100_000
# Items per multicall transaction: a gas limit of 100 x 150k + 100k = 15.1M (about 10.9M used) is half
# the embedded chain's 30,029,122 block gas limit, and under the 16,777,216 per-transaction cap that
# EIP-7825 sets on Osaka networks; beyond ~50 items a larger batch saves little time per item.
BULK_CHUNK = 100
# Codes looked up per query when checking a batch (well under any driver's bind-parameter limit).
_CODES_PER_QUERY = 500
# The selector of OpenZeppelin's multicall(bytes[]): in the dispatcher of a ShareLedger that has it.
_MULTICALL_SELECTOR = keccak(text="multicall(bytes[])")[:4]


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
        for label, value in (
            ("name", self.name),
            ("format", self.format),
            ("update_frequency", self.update_frequency),
        ):
            problem = display_text_problem(value)
            if problem is not None:
                raise InvalidInput(f"{label} {problem}", code="invalid_text", field=label)
        if not self.legal_basis.strip():  # free text (履职依据), lines allowed, but not blank
            raise InvalidInput(
                "legal_basis must not be empty or only whitespace", code="invalid_text", field="legal_basis"
            )
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


@dataclass(frozen=True)
class _Version:
    """A version of a resource as signed: its metadata and that metadata's hash (the one on chain)."""

    resource_id: str
    code: str
    metadata: dict[str, Any]
    digest: bytes
    version: int


def _write_version(
    session: Session, row: Resource | None, provider: Party, v: _Version, tx_hash: str, now: datetime
) -> Resource:
    """Record ``v`` as published by ``tx_hash``: the catalog row (created when ``row`` is None) and its
    ResourceVersion. The one writer for single and bulk publishing, so their rows cannot differ."""
    metadata_json = json.dumps(v.metadata, ensure_ascii=False)
    if row is None:
        row = Resource(id=v.resource_id, code=v.code, provider_id=provider.id, created_at=now)
        session.add(row)
    row.name, row.version, row.level = v.metadata["name"], v.version, int(v.metadata["level"])
    row.share_type = ShareType(v.metadata["share_type"])
    row.open_type = OpenType(v.metadata["open_type"])
    row.metadata_json, row.metadata_hash = metadata_json, v.digest
    row.tx_hash, row.updated_at, row.pending_json = tx_hash, now, None
    session.add(
        ResourceVersion(
            resource_id=v.resource_id,
            version=v.version,
            metadata_json=metadata_json,
            metadata_hash=v.digest,
            tx_hash=tx_hash,
            created_at=now,
        )
    )
    return row


def resource_id_bytes32(resource_id: str) -> bytes:
    return bytes(16) + bytes.fromhex(resource_id)


def pending_of(resource: Resource) -> dict[str, Any] | None:
    """The version awaiting its provider's signature (client mode): ``typed_data`` and ``metadata``."""
    if resource.pending_json is None:
        return None
    pending: dict[str, Any] = json.loads(resource.pending_json)
    return pending


def is_published(resource: Resource) -> bool:
    """Whether a version is on chain; a first version awaiting its signature is not yet in the catalog."""
    return resource.version > 0


class CatalogService:
    def __init__(
        self, *, store: Store, chain: Chain, contract: Contract, parties: PartyService, relayer: LocalAccount
    ) -> None:
        self.store = store
        self.chain = chain
        self.contract = contract
        self.parties = parties
        self.relayer = relayer
        self.consent = Consent(chain=chain, contract=contract, parties=parties, relayer=relayer)
        self._bulk_capable: bool | None = None  # the deployed ShareLedger has multicall

    def _document(
        self,
        provider: Party,
        resource_id: str,
        metadata: dict[str, Any],
        digest: bytes,
        version: int,
        *,
        nonce: int | None = None,
    ) -> dict[str, Any]:
        """The ResourceVersion typed data; ``nonce`` defaults to the provider's current one on chain."""
        return self.consent.typed(
            "ResourceVersion",
            {
                "resourceId": resource_id_bytes32(resource_id),
                "provider": provider.address,
                "level": int(metadata["level"]),
                "shareType": ShareType(metadata["share_type"]).chain_value,
                "openType": OpenType(metadata["open_type"]).chain_value,
                "metadataHash": digest,
                "version": version,
                "nonce": self.consent.nonce(provider.address) if nonce is None else nonce,
            },
        )

    @staticmethod
    def _require_department(caller: Party) -> None:
        if caller.kind is not PartyKind.DEPARTMENT:
            raise Forbidden(
                "only a department publishes catalog entries (谁拥有谁定级)", code="forbidden_role"
            )

    @staticmethod
    def _refuse_existing(caller: Party, existing: Resource) -> None:
        """一数一源: a code is registered once, by one provider; its next version is a PUT."""
        if existing.provider_id != caller.id:
            raise Conflict(
                f"resource code {existing.code} is already provided by another department (一数一源)",
                code="resource_code_taken",
            )
        raise Conflict(
            f"you already registered {existing.code} as {existing.id}; PUT a new version",
            code="resource_exists",
        )

    def create(self, caller: Party, spec: ResourceSpec, signing: Signing = Signing.CUSTODIAL) -> Resource:
        """Publish version 1 (custodial), or reserve the code and return its typed data (client)."""
        self._require_department(caller)
        spec.validate()
        with self.store.read() as session:
            existing = session.scalar(select(Resource).where(Resource.code == spec.code))
        if existing is not None:
            self._refuse_existing(caller, existing)
        resource_id = uuid.uuid4().hex
        metadata = spec.metadata()
        digest = keccak(canonical_json(metadata))
        document = self._document(caller, resource_id, metadata, digest, 1)
        signature = self.consent.sign(caller, document, signing)
        if signature is not None:
            return self._publish(
                caller, resource_id, spec.code, metadata, document, signature, custodial=True
            )
        now = datetime.now(UTC)
        resource = Resource(
            id=resource_id,
            code=spec.code,
            provider_id=caller.id,
            name=spec.name,
            version=0,
            share_type=spec.share_type,
            open_type=spec.open_type,
            level=spec.level,
            metadata_json=json.dumps(metadata, ensure_ascii=False),
            metadata_hash=digest,
            tx_hash=None,
            created_at=now,
            updated_at=now,
            pending_json=json.dumps({"typed_data": document, "metadata": metadata}, ensure_ascii=False),
        )
        with self.store.session() as session:
            session.add(resource)
        return resource

    def create_many(
        self, caller: Party, specs: Sequence[ResourceSpec], *, chunk: int = BULK_CHUNK
    ) -> list[Resource]:
        """Publish version 1 of many resources of ``caller`` (custodial signing only), ``chunk`` per
        transaction; returns them in the order of ``specs``.

        Everything is checked before anything is sent — the caller's role and custody, each spec,
        codes repeated in the batch (``duplicate_resource_code``), codes already in the catalog (the
        same ``resource_code_taken`` / ``resource_exists`` as :meth:`create`) — so a refusal leaves
        nothing on chain or in the store. The provider's nonce is read once and counted up locally;
        each chunk is one ``multicall`` of ``registerResource`` calls, preflighted as an eth_call (see
        :meth:`Consent.relay_many`: a spent nonce — a concurrent single signature of the caller —
        re-signs the chunk with fresh nonces), and its rows are written in one store transaction.

        Not atomic across chunks: if chunk k fails (the chain refuses or is unreachable), chunks 1 to
        k-1 stay published, and the error's ``published`` detail counts their items.
        """
        self._require_department(caller)
        if chunk < 1:
            raise ValueError(f"chunk must be at least 1, not {chunk}")
        if not specs:
            raise InvalidInput("no resources to publish", code="empty_batch")
        self.consent.custodial_key(caller)
        self._check_batch(caller, specs)
        self._require_multicall()
        items = []
        for spec in specs:
            metadata = spec.metadata()
            items.append(_Version(uuid.uuid4().hex, spec.code, metadata, keccak(canonical_json(metadata)), 1))
        nonce = self.consent.nonce(caller.address)
        published: list[Resource] = []
        for start in range(0, len(items), chunk):
            part = items[start : start + chunk]
            documents = [
                self._document(caller, v.resource_id, v.metadata, v.digest, v.version, nonce=nonce + i)
                for i, v in enumerate(part)
            ]
            try:
                relayed = self.consent.relay_many(
                    "registerResource",
                    documents,
                    signer=caller,
                    gas=BULK_BASE_GAS + BULK_ITEM_GAS * len(part),
                )
            except LedgerError as exc:
                exc.details["published"] = len(published)
                raise
            nonce = int(relayed.documents[-1]["message"]["nonce"]) + 1
            now = datetime.now(UTC)
            with self.store.session() as session:
                published.extend(
                    _write_version(session, None, caller, v, relayed.receipt.tx_hash, now) for v in part
                )
        return published

    def _require_multicall(self) -> None:
        """Refuse bulk publishing on a ledger whose ``ShareLedger`` was deployed before it had
        ``multicall`` (contracts are deployed once, with the data directory): 409 with the reason,
        rather than the bare revert its preflight would give. The deployed code is read once."""
        if self._bulk_capable is None:
            self._bulk_capable = _MULTICALL_SELECTOR in self.chain.code_at(self.contract.address)
        if not self._bulk_capable:
            raise Conflict(
                f"the ShareLedger contract at {self.contract.address} was deployed before bulk publishing "
                "(it has no multicall): publish the items one by one (POST /v1/resources)",
                code="bulk_unsupported",
            )

    def _check_batch(self, caller: Party, specs: Sequence[ResourceSpec]) -> None:
        """Refuse the first bad item of a batch: an invalid spec, a repeated or an existing code."""
        seen: set[str] = set()
        for n, spec in enumerate(specs):
            try:
                spec.validate()
            except InvalidInput as exc:
                raise InvalidInput(f"item {n} ({spec.code}): {exc.message}", code=exc.code, index=n) from exc
            if spec.code in seen:
                raise InvalidInput(
                    f"item {n}: resource code {spec.code} appears more than once in the batch",
                    code="duplicate_resource_code",
                    index=n,
                )
            seen.add(spec.code)
        codes = [spec.code for spec in specs]
        existing: dict[str, Resource] = {}
        with self.store.read() as session:
            for start in range(0, len(codes), _CODES_PER_QUERY):
                part = codes[start : start + _CODES_PER_QUERY]
                existing.update(
                    (row.code, row)
                    for row in session.scalars(select(Resource).where(Resource.code.in_(part)))
                )
        for code in codes:
            if code in existing:
                self._refuse_existing(caller, existing[code])

    def update(
        self, caller: Party, resource_id: str, spec: ResourceSpec, signing: Signing = Signing.CUSTODIAL
    ) -> Resource:
        """Publish the next version (custodial), or hold it with its typed data (client)."""
        current = self.get(resource_id)
        if current.provider_id != caller.id:
            raise Forbidden("only the resource's provider publishes new versions", code="not_provider")
        if spec.code != current.code:
            raise InvalidInput("a resource's code cannot change", code="code_immutable")
        if not is_published(current):
            raise Conflict(
                f"resource {current.code} awaits the signature of its first version", code="not_published"
            )
        spec.validate()
        metadata = spec.metadata()
        digest = keccak(canonical_json(metadata))
        document = self._document(caller, resource_id, metadata, digest, current.version + 1)
        signature = self.consent.sign(caller, document, signing)
        if signature is not None:
            return self._publish(
                caller, resource_id, spec.code, metadata, document, signature, custodial=True
            )
        with self.store.session() as session:
            row = session.get(Resource, resource_id)
            assert row is not None
            row.pending_json = json.dumps({"typed_data": document, "metadata": metadata}, ensure_ascii=False)
            current = row
        return current

    def submit_signature(self, caller: Party, resource_id: str, signature: str) -> Resource:
        """Client mode: the provider's signature of the pending version's typed data."""
        current = self.get(resource_id)
        if current.provider_id != caller.id:
            raise Forbidden("only the resource's provider signs its versions", code="not_provider")
        pending = pending_of(current)
        if pending is None:
            raise Conflict(
                f"resource {current.code} has no version awaiting a signature", code="not_awaiting_signature"
            )
        document = pending["typed_data"]
        raw = self.consent.check(document, signature, caller.address)
        return self._publish(
            caller, resource_id, current.code, pending["metadata"], document, raw, custodial=False
        )

    def _publish(
        self,
        provider: Party,
        resource_id: str,
        code: str,
        metadata: dict[str, Any],
        document: dict[str, Any],
        signature: bytes,
        *,
        custodial: bool,
    ) -> Resource:
        def reissue(nonce: int) -> dict[str, Any]:
            # The nonce moved: another signature of the provider landed — perhaps a version published
            # by answering a dispute, so the version number is recomputed as well.
            with self.store.session() as session:
                row = session.get(Resource, resource_id)
                version = (row.version if row is not None else 0) + 1
                fresh = renonce(document, nonce, version=version)
                if row is not None and row.pending_json is not None:
                    row.pending_json = json.dumps(
                        {"typed_data": fresh, "metadata": metadata}, ensure_ascii=False
                    )
            return fresh

        relayed = self.consent.relay(
            "registerResource", document, signature, signer=provider, custodial=custodial, reissue=reissue
        )
        version = int(relayed.document["message"]["version"])
        published = _Version(resource_id, code, metadata, keccak(canonical_json(metadata)), version)
        now = datetime.now(UTC)
        with self.store.session() as session:
            row = session.get(Resource, resource_id)
            return _write_version(session, row, provider, published, relayed.receipt.tx_hash, now)

    def get(self, resource_id: str) -> Resource:
        with self.store.read() as session:
            resource = session.get(Resource, resource_id)
        if resource is None:
            raise NotFound(f"no resource {resource_id}", code="resource_not_found")
        return resource

    def get_published(self, resource_id: str) -> Resource:
        """A resource that is in the catalog: one whose first version is on chain."""
        resource = self.get(resource_id)
        if not is_published(resource):
            raise Conflict(
                f"resource {resource.code} awaits the signature of its first version", code="not_published"
            )
        return resource

    def find(
        self,
        *,
        provider: str | None = None,
        share_type: ShareType | None = None,
        open_type: OpenType | None = None,
        level: int | None = None,
    ) -> list[Resource]:
        query = select(Resource).where(Resource.version > 0).order_by(Resource.code)
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
