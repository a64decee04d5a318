"""Anchoring: put the log's root on chain in batches, with a consistency proof.

Per-access transactions cannot scale (the embedded chain does a few dozen per second); one anchor
every few seconds or every N events keeps a per-access proof while costing one transaction per
batch. The anchor contract accepts a new root only with an RFC 9162 consistency proof from the
latest anchored one, so the anchored history can only grow.

Robustness rules:
- the chain's ``latest()`` is read before every anchor, so a checkpoint anchored before a crash (or
  by another instance) is recorded, not anchored twice;
- chain errors are retried with exponential backoff (capped), and the next success anchors
  everything that accumulated during the outage in one transaction;
- a chain root that disagrees with the store's tree for the same size stops anchoring loudly
  (the database diverged from the chain: run ``sharetrail verify``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from eth_account.signers.local import LocalAccount
from web3.contract.contract import Contract

from ledger.chain.client import Chain
from ledger.errors import ChainError, VerificationError
from ledger.log.leader import LeaderLoop
from ledger.log.note import NoteSigner, checkpoint_body
from ledger.log.store import LogStore
from ledger.store.models import Checkpoint

log = logging.getLogger("sharetrail.anchor")


@dataclass(frozen=True)
class AnchorPolicy:
    interval: float = 2.0  # seconds between anchors when anything is pending
    batch: int = 1000  # anchor at once when this many leaves are pending
    max_backoff: float = 5.0  # a returning chain is caught up within seconds (issue: ≤ 10 s)


class Anchorer(LeaderLoop):
    thread_name = "sharetrail-anchor"
    what = "anchoring"
    retryable = (ChainError, VerificationError)
    first_backoff = 0.25

    def __init__(
        self,
        *,
        log_store: LogStore,
        chain: Chain,
        contract: Contract,
        operator: LocalAccount,
        signer: NoteSigner,
        origin: str,
        policy: AnchorPolicy | None = None,
    ) -> None:
        self.log = log_store
        self.chain = chain
        self.contract = contract
        self.operator = operator
        self.signer = signer
        self.origin = origin
        self.policy = policy or AnchorPolicy()
        # Wake at least every 0.5 s: a full batch is anchored without waiting for the interval.
        super().__init__(wait=min(self.policy.interval, 0.5), max_backoff=self.policy.max_backoff, logger=log)
        self._lock = threading.Lock()
        self._last_anchor = 0.0
        self.on_anchor: Callable[[Checkpoint], None] | None = None

    # -- one step ---------------------------------------------------------------------------------
    def chain_latest(self) -> tuple[int, bytes]:
        size, root = self.chain.call(self.contract.functions.latest())
        return int(size), bytes(root)

    def note_for(self, size: int, root: bytes) -> str:
        return self.signer.sign(checkpoint_body(self.origin, size, root))

    def _record(self, size: int, root: bytes, tx_hash: str, block_number: int) -> Checkpoint:
        checkpoint = Checkpoint(
            size=size,
            root=root,
            chain_id=self.chain.chain_id,
            contract=self.contract.address,
            tx_hash=tx_hash,
            block_number=block_number,
            note=self.note_for(size, root),
        )
        self.log.record_checkpoint(checkpoint)
        return checkpoint

    def _reconcile(self, size: int, root: bytes) -> None:
        """Record a checkpoint that is on chain but not in the store (crash after the tx)."""
        if size == 0 or self.log.checkpoint(size) is not None:
            return
        if self.log.size() < size or self.log.root(size) != root:
            raise VerificationError(
                f"the chain anchors size {size} with root 0x{root.hex()} but the store's tree disagrees; "
                "run `sharetrail verify`",
                code="store_diverged",
            )
        events = self.contract.events.Anchored().get_logs(from_block=0)
        for event in events:
            if int(event["args"]["treeSize"]) == size:
                self._record(
                    size, root, "0x" + bytes(event["transactionHash"]).hex(), int(event["blockNumber"])
                )
                return
        self._record(size, root, "0x" + "00" * 32, 0)

    def anchor_once(self) -> Checkpoint | None:
        """Anchor everything pending now; return the new checkpoint, or None if nothing was pending."""
        with self._lock:
            anchored_size, anchored_root = self.chain_latest()
            self._reconcile(anchored_size, anchored_root)
            size = self.log.size()
            if size <= anchored_size:
                return None
            root = self.log.root(size)
            proof = self.log.consistency_proof(anchored_size, size) if anchored_size else []
            receipt = self.chain.transact(self.contract.functions.anchor(size, root, proof), self.operator)
            checkpoint = self._record(size, root, receipt.tx_hash, receipt.block_number)
            log.info("anchored size %d root 0x%s in %s", size, root.hex(), receipt.tx_hash)
        if self.on_anchor is not None:
            self.on_anchor(checkpoint)
        return checkpoint

    def record_leaves(self) -> int:
        """Put pending per-access leaves on chain, one transaction each; return how many.

        Idempotent: a leaf already on chain (a crash after the transaction) is only marked."""
        done = 0
        with self._lock:
            for index, leaf in self.log.pending_leaf_records():
                recorded = bytes(self.chain.call(self.contract.functions.leafAt(index)))
                if recorded == leaf:
                    self.log.mark_leaf_recorded(index, "0x" + "00" * 32, 0)
                    continue
                if recorded != bytes(32):
                    raise VerificationError(
                        f"the chain records leaf {index} as 0x{recorded.hex()}, the store as 0x{leaf.hex()}",
                        code="store_diverged",
                    )
                receipt = self.chain.transact(self.contract.functions.recordLeaf(index, leaf), self.operator)
                self.log.mark_leaf_recorded(index, receipt.tx_hash, receipt.block_number)
                done += 1
        return done

    # -- the loop (LeaderLoop.run) -----------------------------------------------------------------
    def _pending(self) -> int:
        latest = self.log.latest_checkpoint()
        return self.log.size() - (latest.size if latest else 0)

    def on_start(self) -> None:
        self._last_anchor = 0.0

    def tick(self, *, retrying: bool) -> None:
        """Record due leaves; anchor when the interval has passed, a batch is full, or after a
        failure (a returning chain is caught up at once)."""
        self.record_leaves()
        pending = self._pending()
        due = time.monotonic() - self._last_anchor >= self.policy.interval
        if pending and (due or pending >= self.policy.batch or retrying):
            self.anchor_once()
            self._last_anchor = time.monotonic()
