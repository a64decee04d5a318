"""SQLAlchemy 2 ORM models. The schema itself is created by the Alembic migrations."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import (
    BigInteger,
    Date,
    DateTime,
    Enum,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ledger.types import (
    ApplicationStatus,
    ContractKind,
    ContractStatus,
    Custody,
    OpenType,
    PartyKind,
    PartyStatus,
    ReleaseMode,
    RequestStatus,
    ShareType,
)


def utcnow() -> datetime:
    return datetime.now(UTC)


# BIGINT everywhere, but SQLite only auto-increments an INTEGER PRIMARY KEY (the rowid alias).
BigId = BigInteger().with_variant(Integer, "sqlite")


class Base(DeclarativeBase):
    pass


def _enum(cls: type) -> Enum:
    return Enum(
        cls,
        name=cls.__name__.lower(),
        native_enum=False,
        length=32,
        validate_strings=True,
        values_callable=lambda e: [m.value for m in e],
    )


class Party(Base):
    __tablename__ = "parties"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[PartyKind] = mapped_column(_enum(PartyKind))
    name: Mapped[str] = mapped_column(String(200))
    uscc: Mapped[str] = mapped_column(String(18), unique=True)
    address: Mapped[str] = mapped_column(String(42), unique=True)
    custody: Mapped[Custody] = mapped_column(_enum(Custody))
    status: Mapped[PartyStatus] = mapped_column(_enum(PartyStatus), default=PartyStatus.ACTIVE)
    key_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    registered_tx: Mapped[str | None] = mapped_column(String(66), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PlatformKey(Base):
    """Keys of the platform itself (funder/deployer, anchoring operator), encrypted at rest."""

    __tablename__ = "platform_keys"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    address: Mapped[str] = mapped_column(String(42))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)


class ChainContract(Base):
    """Where each contract was deployed, per chain id; deployed once, reused after restarts."""

    __tablename__ = "chain_contracts"
    __table_args__ = (UniqueConstraint("chain_id", "name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    name: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(42))
    tx_hash: Mapped[str] = mapped_column(String(66))
    block_number: Mapped[int] = mapped_column(BigInteger)
    deployed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LogEntry(Base):
    """One leaf of the Merkle log: the canonical (RFC 8785) bytes of an event, at its index.

    Append-only: database triggers refuse UPDATE and DELETE (the verifier still catches a
    privileged user who drops them). The leaf's hash is *not* stored here but in ``log_nodes``,
    so a row moved, edited or swapped is caught against the authenticated tree.
    """

    __tablename__ = "log_entries"
    __table_args__ = (
        Index("ix_log_entries_kind_idx", "kind", "idx"),  # 0010: refusals newest first without a sort
        # 0012: each trail column with the log index, so "newest first" is the index's order on
        # PostgreSQL too (SQLite's single-column indexes carried the rowid, which is idx), and the
        # kind, so a party's refusals are sifted in the index
        *(
            Index(f"ix_log_entries_{c}_idx", c, "idx", "kind")
            for c in ("accessor", "provider", "resource", "grant_ref", "purpose")
        ),
        # 0011: time windows covering what the trail's filters, the lineage graph and the statistics
        # read (the kind's replaces 0007's (kind, time), its prefix)
        Index("ix_log_entries_kind_window", "kind", "time", "provider", "resource", "accessor"),
        Index("ix_log_entries_accessor_window", "accessor", "time", "kind", "purpose", "mode"),
        Index("ix_log_entries_provider_time", "provider", "time"),
        Index(
            "ix_log_entries_resource_window", "resource", "time", "kind", "accessor", "purpose", "grant_ref"
        ),
    )

    idx: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    accessor: Mapped[str | None] = mapped_column(String(64), nullable=True)
    resource: Mapped[str | None] = mapped_column(String(64), nullable=True)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    request_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    entry: Mapped[bytes] = mapped_column(LargeBinary)
    # Trail columns (0007): copies of entry fields for indexed audit queries; the entry is the authority.
    provider: Mapped[str | None] = mapped_column(String(64), nullable=True)
    grant_ref: Mapped[str | None] = mapped_column(String(80), nullable=True)
    purpose: Mapped[str | None] = mapped_column(String(64), nullable=True)
    mode: Mapped[str | None] = mapped_column(String(16), nullable=True)


class LogNode(Base):
    """Every complete ("perfect") subtree hash of the log, keyed by tile (``ledger/log/layout.py``).

    Level 0 are the leaf hashes. With all perfect nodes stored, an inclusion or consistency proof
    is O(log n) point reads (docs/log.md).
    """

    __tablename__ = "log_nodes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class LogTimeBlock(Base):
    """The earliest and latest event time in a block of ``2**TIME_BLOCK_BITS`` log indices
    (``ledger.log.store``), kept by the append: bounds a time window's log indices for the trail
    (migration 0016)."""

    __tablename__ = "log_time_blocks"

    block: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    min_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    max_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LogHead(Base):
    """The single row that serialises appenders: current size and the right border (frontier)."""

    __tablename__ = "log_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    size: Mapped[int] = mapped_column(BigInteger)
    frontier: Mapped[bytes] = mapped_column(LargeBinary)


class Checkpoint(Base):
    """A (size, root) anchored on chain, with where, and its C2SP signed note."""

    __tablename__ = "checkpoints"

    size: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    chain_id: Mapped[int] = mapped_column(BigInteger)
    contract: Mapped[str] = mapped_column(String(42))
    tx_hash: Mapped[str] = mapped_column(String(66))
    block_number: Mapped[int] = mapped_column(BigInteger)
    anchored_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    note: Mapped[str] = mapped_column(String(4000))


class LeafRecord(Base):
    """A leaf that must also be on chain in its own transaction (its resource's level requires it).

    Written in the same transaction as the leaf, so the intent survives a crash; ``tx_hash`` is set
    once the chain has it (the anchoring loop retries until then)."""

    __tablename__ = "leaf_records"

    idx: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    block_number: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class Resource(Base):
    """A catalog entry (数据资源目录项): its current version; history in ``resource_versions``."""

    __tablename__ = "resources"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    provider_id: Mapped[str] = mapped_column(String(32), index=True)
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    share_type: Mapped[ShareType] = mapped_column(_enum(ShareType))
    open_type: Mapped[OpenType] = mapped_column(_enum(OpenType))
    level: Mapped[int] = mapped_column(Integer)
    metadata_json: Mapped[str] = mapped_column(Text)
    metadata_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Client mode (0008): the next version awaiting the provider's signature — its typed data and
    # metadata — as JSON; version 0 above means the first version is not on chain yet.
    pending_json: Mapped[str | None] = mapped_column(Text, nullable=True)


class ResourceVersion(Base):
    __tablename__ = "resource_versions"
    __table_args__ = (UniqueConstraint("resource_id", "version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    resource_id: Mapped[str] = mapped_column(String(32), index=True)
    version: Mapped[int] = mapped_column(Integer)
    metadata_json: Mapped[str] = mapped_column(Text)
    metadata_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ShareRequest(Base):
    """A share request (共享申请) and, once answered, its decision; the chain holds the consent."""

    __tablename__ = "share_requests"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    resource_id: Mapped[str] = mapped_column(String(32), index=True)
    requester_id: Mapped[str] = mapped_column(String(32), index=True)
    provider_id: Mapped[str] = mapped_column(String(32), index=True)
    purpose_code: Mapped[str] = mapped_column(String(64))
    purpose_text: Mapped[str] = mapped_column(Text)
    legal_basis: Mapped[str] = mapped_column(Text)
    scope_json: Mapped[str] = mapped_column(Text)
    status: Mapped[RequestStatus] = mapped_column(_enum(RequestStatus), index=True)
    applied_on: Mapped[date] = mapped_column(Date)
    respond_by: Mapped[date] = mapped_column(Date, index=True)
    request_typed_data: Mapped[str] = mapped_column(Text)
    request_signature: Mapped[str | None] = mapped_column(String(132), nullable=True)
    request_tx: Mapped[str | None] = mapped_column(String(66), nullable=True)
    decision_typed_data: Mapped[str | None] = mapped_column(Text, nullable=True)
    decision_signature: Mapped[str | None] = mapped_column(String(132), nullable=True)
    decision_tx: Mapped[str | None] = mapped_column(String(66), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    decided_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    late: Mapped[bool] = mapped_column(default=False)
    cosign_txs: Mapped[str] = mapped_column(Text, default="[]")
    grant_id: Mapped[str | None] = mapped_column(String(66), nullable=True, index=True)
    revoked_tx: Mapped[str | None] = mapped_column(String(66), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Client mode (0008): per signer (party id), the co-signature / revocation typed data it was given.
    cosign_pending_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    revoke_pending_json: Mapped[str | None] = mapped_column(Text, nullable=True)


class Dispute(Base):
    """疑义数据校核: a user of shared data disputes a resource version; the provider answers."""

    __tablename__ = "disputes"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    resource_id: Mapped[str] = mapped_column(String(32), index=True)
    version: Mapped[int] = mapped_column(Integer)
    filer_id: Mapped[str] = mapped_column(String(32), index=True)
    provider_id: Mapped[str] = mapped_column(String(32), index=True)
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(32), index=True)  # ledger.sharing.disputes.DisputeStatus
    filed_on: Mapped[date] = mapped_column(Date)
    respond_by: Mapped[date] = mapped_column(Date)
    file_tx: Mapped[str | None] = mapped_column(String(66), nullable=True)  # None until signed (0008)
    answer: Mapped[str | None] = mapped_column(Text, nullable=True)
    corrected: Mapped[bool] = mapped_column(default=False)
    new_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    answer_tx: Mapped[str | None] = mapped_column(String(66), nullable=True)
    answered_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    late: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Client mode (0008): the filing's typed data, and the pending answer (typed data, text, correction).
    file_typed_data: Mapped[str | None] = mapped_column(Text, nullable=True)
    answer_pending_json: Mapped[str | None] = mapped_column(Text, nullable=True)


class DataSource(Base):
    """Where a resource's rows live (registered by its provider); the location is sealed at rest
    because a database URL can carry a password."""

    __tablename__ = "data_sources"

    resource_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    location: Mapped[bytes] = mapped_column(LargeBinary)
    table_name: Mapped[str | None] = mapped_column(String(128), nullable=True)
    query: Mapped[str | None] = mapped_column(Text, nullable=True)
    registered_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class GrantUsage(Base):
    """Accesses made under a grant, counted in the transaction that logs each access."""

    __tablename__ = "grant_usage"

    grant_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    accesses: Mapped[int] = mapped_column(BigInteger)
    last_index: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class LogSubject(Base):
    """Data-subject index: keyed hash of an ID number → log index of an event about that person.
    Filled from the entries by the subject indexer (``ledger.log.subject_index``), except for an
    access with more subjects than its entry carries inline, whose rows the append writes."""

    __tablename__ = "log_subjects"

    subject_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True)


class SubjectIndexCursor(Base):
    """Every log entry below ``next_index`` has its inline subjects in ``log_subjects`` — moved by the
    subject indexer in the same transaction as the rows it added (0017)."""

    __tablename__ = "log_subject_cursor"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    next_index: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SubjectToken(Base):
    """A data subject's token (issued by the registrar after checking identity) for the tracker."""

    __tablename__ = "subject_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    subject_hash: Mapped[bytes] = mapped_column(LargeBinary(32), index=True)
    issued_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class OpenContract(Base):
    """An open contract (契约式开放协议) or the contract an approved application (依申请开放) created; the
    chain (``OpenContracts``) holds the consent and the status history, this row the documents."""

    __tablename__ = "open_contracts"

    id: Mapped[str] = mapped_column(String(66), primary_key=True)
    kind: Mapped[ContractKind] = mapped_column(_enum(ContractKind))
    operator_id: Mapped[str] = mapped_column(String(32), index=True)
    enterprise_id: Mapped[str] = mapped_column(String(32), index=True)
    resources_json: Mapped[str] = mapped_column(Text)
    providers_json: Mapped[str] = mapped_column(Text)
    purposes_json: Mapped[str] = mapped_column(Text)
    scope_json: Mapped[str] = mapped_column(Text)
    obligations_json: Mapped[str] = mapped_column(Text)
    terms_hash: Mapped[str] = mapped_column(String(66))
    terms_uri: Mapped[str | None] = mapped_column(Text, nullable=True)
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    valid_until: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[ContractStatus] = mapped_column(_enum(ContractStatus), index=True)
    proposal_typed_data: Mapped[str] = mapped_column(Text)
    proposal_signature: Mapped[str | None] = mapped_column(String(132), nullable=True)
    proposal_tx: Mapped[str | None] = mapped_column(String(66), nullable=True)
    signatures_json: Mapped[str] = mapped_column(Text, default="{}")
    pending_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    history_json: Mapped[str] = mapped_column(Text, default="[]")
    application_id: Mapped[str | None] = mapped_column(String(66), nullable=True)
    effective_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    terminated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class OpenApplication(Base):
    """An enterprise's application for an on-application resource (依申请开放) and its two reviews."""

    __tablename__ = "open_applications"

    id: Mapped[str] = mapped_column(String(66), primary_key=True)
    enterprise_id: Mapped[str] = mapped_column(String(32), index=True)
    resource_id: Mapped[str] = mapped_column(String(32), index=True)
    provider_id: Mapped[str] = mapped_column(String(32), index=True)
    purpose_code: Mapped[str] = mapped_column(String(64))
    purpose_text: Mapped[str] = mapped_column(Text)
    scope_json: Mapped[str] = mapped_column(Text)
    qualifications_json: Mapped[str] = mapped_column(Text)
    qualifications_hash: Mapped[str] = mapped_column(String(66))
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    valid_until: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    applied_on: Mapped[date] = mapped_column(Date)
    review_by: Mapped[date] = mapped_column(Date, index=True)
    status: Mapped[ApplicationStatus] = mapped_column(_enum(ApplicationStatus), index=True)
    typed_data: Mapped[str] = mapped_column(Text)
    signature: Mapped[str | None] = mapped_column(String(132), nullable=True)
    tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    reviews_json: Mapped[str] = mapped_column(Text, default="{}")
    pending_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    contract_id: Mapped[str | None] = mapped_column(String(66), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class NegativeListing(Base):
    """A resource's place on the negative list (负面清单), as last set on chain by a registrar."""

    __tablename__ = "negative_listings"

    resource_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    listed: Mapped[bool] = mapped_column()
    reason: Mapped[str] = mapped_column(Text)
    by_id: Mapped[str] = mapped_column(String(32))
    tx_hash: Mapped[str] = mapped_column(String(66))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DerivedProduct(Base):
    """A usage declaration: a derived product an enterprise made from accesses under a contract."""

    __tablename__ = "derived_products"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    enterprise_id: Mapped[str] = mapped_column(String(32), index=True)
    contract_id: Mapped[str] = mapped_column(String(66), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    inputs_json: Mapped[str] = mapped_column(Text)
    resources_json: Mapped[str] = mapped_column(Text)
    purpose: Mapped[str] = mapped_column(String(64))
    release_mode: Mapped[ReleaseMode] = mapped_column(_enum(ReleaseMode))
    log_index: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RaisedAlert(Base):
    """An alert the monitor raised as events arrived (``ledger.audit.monitor``), kept until a
    regulator acknowledges it. One *open* alert per rule and subject (the grant, the party, the
    party's day, the request…): the rule firing again on it extends its evidence (0014)."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_status_id", "status", "id"),
        Index("ix_alerts_party_id", "party", "id"),
        Index("ix_alerts_rule_id", "rule", "id"),
        Index("ix_alerts_updated_at", "updated_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    rule: Mapped[str] = mapped_column(String(32))  # ledger.audit.rules.Rule
    severity: Mapped[str] = mapped_column(String(16))  # ledger.audit.rules.Severity
    subject: Mapped[str] = mapped_column(String(255))
    party: Mapped[str | None] = mapped_column(String(64), nullable=True)
    resource: Mapped[str | None] = mapped_column(String(64), nullable=True)
    grant_ref: Mapped[str | None] = mapped_column(String(80), nullable=True)  # grant or open contract
    message: Mapped[str] = mapped_column(Text)
    time: Mapped[str | None] = mapped_column(String(40), nullable=True)  # when it happened (event or day)
    evidence_json: Mapped[str] = mapped_column(Text, default="[]")  # log indices, the first 1000
    evidence_count: Mapped[int] = mapped_column(BigInteger, default=0)
    first_evidence: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_evidence: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    raised_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default="open")  # ledger.audit.rules.AlertStatus
    acknowledged_by: Mapped[str | None] = mapped_column(String(32), nullable=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)


# At most one open alert per rule and subject, whoever writes (a partial unique index).
Index(
    "ux_alerts_open_subject",
    RaisedAlert.rule,
    RaisedAlert.subject,
    unique=True,
    sqlite_where=RaisedAlert.status == "open",
    postgresql_where=RaisedAlert.status == "open",
)


class AlertCursor(Base):
    """Where the alert monitor stands in the log: every entry below ``next_index`` has been evaluated
    and its alerts stored, in the same transaction that moved the cursor (0014)."""

    __tablename__ = "alert_cursor"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    next_index: Mapped[int] = mapped_column(BigInteger)
    deadlines_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class StatRollup(Base):
    """Exchanges (access events) per Beijing day, provider, resource and accessor, rolled up from the
    log entries below ``stat_rollup_cursor.next_index`` (0015; ``ledger/audit/rollup.py``). ``''``
    stands for a column the event left empty. Read for statistics narrowed to a party or resource."""

    __tablename__ = "stat_rollup"
    __table_args__ = (
        Index("ix_stat_rollup_accessor_day", "accessor", "day"),
        Index("ix_stat_rollup_provider_day", "provider", "day"),
        Index("ix_stat_rollup_resource_day", "resource", "day"),
        {"sqlite_with_rowid": False},
    )

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    provider: Mapped[str] = mapped_column(String(64), primary_key=True)
    resource: Mapped[str] = mapped_column(String(64), primary_key=True)
    accessor: Mapped[str] = mapped_column(String(64), primary_key=True)
    exchanges: Mapped[int] = mapped_column(BigInteger)


class StatResourceTotal(Base):
    """Exchanges per (provider, resource) and Beijing day or month (``grain``: ``day`` / ``month``,
    ``period``: the day or the month's first day), from the same entries as ``stat_rollup`` (0015)."""

    __tablename__ = "stat_rollup_resources"
    __table_args__ = ({"sqlite_with_rowid": False},)

    grain: Mapped[str] = mapped_column(String(8), primary_key=True)  # ledger.audit.rollup.Grain
    period: Mapped[date] = mapped_column(Date, primary_key=True)
    provider: Mapped[str] = mapped_column(String(64), primary_key=True)
    resource: Mapped[str] = mapped_column(String(64), primary_key=True)
    exchanges: Mapped[int] = mapped_column(BigInteger)


class StatAccessorTotal(Base):
    """Exchanges per accessor and Beijing day or month, from the same entries as ``stat_rollup``."""

    __tablename__ = "stat_rollup_accessors"
    __table_args__ = ({"sqlite_with_rowid": False},)

    grain: Mapped[str] = mapped_column(String(8), primary_key=True)  # ledger.audit.rollup.Grain
    period: Mapped[date] = mapped_column(Date, primary_key=True)
    accessor: Mapped[str] = mapped_column(String(64), primary_key=True)
    exchanges: Mapped[int] = mapped_column(BigInteger)


class StatRollupCursor(Base):
    """Every log entry below ``next_index`` is counted in the rollups — moved in the same transaction
    as the counts it added (0015)."""

    __tablename__ = "stat_rollup_cursor"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    next_index: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
