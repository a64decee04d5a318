"""A decision waiting for its provider's signature (client mode), kept apart from the request.

The request's own columns (``scope_json``, ``reason``) hold what was requested until a decision is
confirmed on chain; only then do they take the decision's terms and reason. A decision prepared for a
client to sign is kept in ``decision_typed_data`` together with the terms and reason it stands for
(``{"typed_data": …, "terms": …, "reason": …}``), so a signature that never comes, or a relay that
fails, leaves the request exactly as it was requested — and the signature, when it comes, grants
exactly the terms whose hash the provider signed. Once relayed, ``decision_typed_data`` holds the
bare EIP-712 document (the one the co-signers endorse and a proof bundle carries).

A row written before this layout holds the bare document while pending, with the terms already in
``scope_json`` and the reason in ``reason``: :func:`unpack` reads it that way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ledger.store.models import ShareRequest


@dataclass(frozen=True)
class PendingDecision:
    typed_data: dict[str, Any]
    terms: dict[str, Any]
    reason: str

    def pack(self) -> str:
        return json.dumps(
            {"typed_data": self.typed_data, "terms": self.terms, "reason": self.reason}, ensure_ascii=False
        )


def unpack(row: ShareRequest) -> PendingDecision | None:
    """The decision stored on ``row`` awaiting its signature, if there is one."""
    if row.decision_typed_data is None:
        return None
    stored: dict[str, Any] = json.loads(row.decision_typed_data)
    if "primaryType" in stored:  # the bare document: a pending row of the earlier layout
        return PendingDecision(stored, json.loads(row.scope_json), row.reason or "")
    return PendingDecision(stored["typed_data"], stored["terms"], stored["reason"])
