"""``POST /v1/audit/verify``: the full integrity audit of ``sharetrail verify``, as a report.

Recomputes every leaf from the stored entries, rebuilds the roots, and checks each anchored
checkpoint on chain and the consistency between them (:mod:`ledger.log.verify`); the report names
each broken record by log index and the anchored roots it relied on. One audit at a time: a second
request while one runs is refused (409) rather than doubling the load.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

from web3.contract.contract import Contract

from ledger.chain.client import Chain
from ledger.errors import Conflict, Forbidden
from ledger.log.store import LogStore
from ledger.log.verify import verify
from ledger.store.db import Store
from ledger.store.models import Party
from ledger.types import PartyKind

MAX_PROBLEMS = 1000


class IntegrityAudit:
    def __init__(self, *, store: Store, chain: Chain, anchor: Contract, log: LogStore) -> None:
        self.store = store
        self.chain = chain
        self.anchor = anchor
        self.log = log
        self._running = threading.Lock()

    def run(self, caller: Party) -> dict[str, Any]:
        if caller.kind not in (PartyKind.REGULATOR, PartyKind.REGISTRAR):
            raise Forbidden(
                "the integrity audit is run by the regulator or the registrar", code="forbidden_role"
            )
        if not self._running.acquire(blocking=False):
            raise Conflict("an integrity audit is already running; retry when it ends", code="audit_running")
        try:
            started = time.perf_counter()
            report = verify(self.store, self.chain, self.anchor)
            seconds = time.perf_counter() - started
        finally:
            self._running.release()
        latest = self.log.latest_checkpoint()
        body = report.as_dict()
        problems = body["problems"]
        assert isinstance(problems, list)
        return {
            **body,
            "problems": problems[:MAX_PROBLEMS],
            "problems_total": len(problems),
            "checked_at": datetime.now(UTC),
            "seconds": round(seconds, 3),
            "chain_id": self.chain.chain_id,
            "anchor_contract": self.anchor.address,
            "latest_anchored": None
            if latest is None
            else {
                "tree_size": latest.size,
                "root": "0x" + bytes(latest.root).hex(),
                "tx_hash": latest.tx_hash,
                "block_number": latest.block_number,
                # aware, so it is written with its zone like every time (SQLite keeps none)
                "anchored_at": latest.anchored_at.replace(tzinfo=latest.anchored_at.tzinfo or UTC),
            },
        }
