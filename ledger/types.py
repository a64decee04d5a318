"""Enums for every kind and status, stored as such (no bare strings compared across files)."""

from __future__ import annotations

import enum
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
