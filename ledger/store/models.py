"""SQLAlchemy 2 ORM models. The schema itself is created by the Alembic migrations."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import BigInteger, DateTime, Enum, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ledger.types import Custody, PartyKind, PartyStatus


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
