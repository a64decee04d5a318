"""The project's exception hierarchy.

Every way an operation of ``ledger`` can fail is one of these; third-party exceptions
(web3, SQLAlchemy, cryptography) are translated at the boundary. Each error carries a stable
machine-readable ``code`` that the API puts in its JSON error envelope, and a human message.
Subclasses also inherit from the matching builtin, following web3.py's habit, so callers that
only know ``ValueError`` / ``LookupError`` / ``PermissionError`` still catch them.
"""

from __future__ import annotations

from typing import Any


class LedgerError(Exception):
    """Base of every sharetrail error."""

    code: str = "ledger_error"

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details: dict[str, Any] = details

    def __str__(self) -> str:
        return self.message


class InvalidInput(LedgerError, ValueError):
    """The caller sent something that is not acceptable (maps to 400/422)."""

    code = "invalid_input"


class Unauthorized(LedgerError, PermissionError):
    """No or an unknown credential (maps to 401)."""

    code = "unauthorized"


class Forbidden(LedgerError, PermissionError):
    """A known caller that may not do this (maps to 403)."""

    code = "forbidden"


class NotFound(LedgerError, LookupError):
    """The named object does not exist, or the caller may not know it exists (maps to 404)."""

    code = "not_found"


class Conflict(LedgerError):
    """The request clashes with the current state (maps to 409)."""

    code = "conflict"


class VerificationError(LedgerError):
    """A cryptographic or integrity check failed. Verify functions raise this; they never return bool."""

    code = "verification_failed"


class ChainError(LedgerError):
    """The chain refused or could not be reached (maps to 502/503 at the API)."""

    code = "chain_error"


class ContractRevert(ChainError):
    """A contract call reverted; ``code`` is the custom error's name in snake case when known."""

    code = "contract_revert"


class StoreError(LedgerError):
    """The database failed (locked, full, unreachable) — maps to 503, nothing acknowledged."""

    code = "store_unavailable"
