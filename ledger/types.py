"""Enums for every kind and status, stored as such (no bare strings compared across files)."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import NewType

PartyId = NewType("PartyId", str)


class PartyKind(enum.StrEnum):
    REGISTRAR = "registrar"
    DEPARTMENT = "department"
    OPERATOR = "operator"
    ENTERPRISE = "enterprise"
    REGULATOR = "regulator"

    @property
    def chain_value(self) -> int:
        """The ``PartyRegistry.Kind`` enum value on chain (0 is None)."""
        return list(PartyKind).index(self) + 1


class PartyStatus(enum.StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


class Custody(enum.StrEnum):
    """Who holds the party's signing key: the server (encrypted at rest) or the party itself."""

    CUSTODIAL = "custodial"
    CLIENT = "client"


class ShareType(enum.StrEnum):
    """共享类型 (Guiyang plan): unconditional 无条件共享, conditional 有条件共享, none 不予共享."""

    UNCONDITIONAL = "unconditional"
    CONDITIONAL = "conditional"
    NONE = "none"

    @property
    def chain_value(self) -> int:
        return list(ShareType).index(self)


class OpenType(enum.StrEnum):
    """开放类型: open 无条件开放, on_application 依申请开放, contract 契约式开放, none 不予开放."""

    OPEN = "open"
    ON_APPLICATION = "on_application"
    CONTRACT = "contract"
    NONE = "none"

    @property
    def chain_value(self) -> int:
        return list(OpenType).index(self)


class MaskingRule(enum.StrEnum):
    """脱敏 rules a sensitive field can carry (applied by the gateway)."""

    NONE = "none"
    ID_NUMBER = "id_number"
    NAME = "name"
    PHONE = "phone"
    ADDRESS = "address"
    BANK_CARD = "bank_card"
    PSEUDONYM = "pseudonym"
    GENERALIZE = "generalize"
    REDACT = "redact"


class RequestStatus(enum.StrEnum):
    AWAITING_SIGNATURE = "awaiting_signature"  # client mode: the requester has not signed yet
    PENDING = "pending"  # on chain, waiting for the provider's decision
    AWAITING_DECISION_SIGNATURE = "awaiting_decision_signature"  # client mode: the provider has not signed
    AWAITING_COSIGN = "awaiting_cosign"  # approved; level >= 3 needs the registrar's co-signature(s)
    GRANTED = "granted"
    REJECTED = "rejected"


class Signing(enum.StrEnum):
    CUSTODIAL = "custodial"
    CLIENT = "client"


class ContractKind(enum.StrEnum):
    """How an open contract came about: proposed as a three-party contract (契约式开放), or created by the
    approval of an application (依申请开放). On chain: ``OpenContracts.KIND_*`` (0, 1)."""

    CONTRACT = "contract"
    APPLICATION = "application"


class ContractStatus(enum.StrEnum):
    AWAITING_SIGNATURE = "awaiting_signature"  # client mode: the operator has not signed the proposal yet
    PROPOSED = "proposed"  # on chain, waiting for the enterprise's and the providers' signatures
    EFFECTIVE = "effective"
    SUSPENDED = "suspended"
    TERMINATED = "terminated"


class ContractAction(enum.IntEnum):
    """``OpenContracts.ACTION_*``: what a ``StatusChange`` does."""

    SUSPEND = 1
    RESUME = 2
    TERMINATE = 3


class Obligation(enum.StrEnum):
    """A contract's obligations (三方主体的职责和义务); bit ``1 << index`` on chain."""

    NO_REIDENTIFICATION = "no_reidentification"
    NO_ONWARD_TRANSFER = "no_onward_transfer"
    DECLARE_DERIVED = "declare_derived"
    PUBLIC_RELEASE = "public_release"

    @property
    def bit(self) -> int:
        return 1 << list(Obligation).index(self)


class ApplicationStatus(enum.StrEnum):
    AWAITING_SIGNATURE = "awaiting_signature"  # client mode: the enterprise has not signed yet
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class ReleaseMode(enum.StrEnum):
    """How a derived product is released (usage declaration)."""

    INTERNAL = "internal"
    CUSTOMERS = "customers"
    PUBLIC = "public"


def utc_text(moment: datetime) -> str:
    """A time as the API writes it: RFC 3339 in UTC with ``Z``. A naive value is UTC already (the
    store keeps UTC; SQLite keeps no zone)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
