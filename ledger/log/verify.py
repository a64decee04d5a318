"""The integrity audit: recompute the log from the database rows and check it against the chain.

Trust comes only from the chain: the anchor contract's ``Anchored`` events give the (size, root)
checkpoints, and the contract accepted each only with a consistency proof from the previous one.

1. The stored leaf hashes (``log_nodes`` level 0) are folded into roots and compared with every
   anchored checkpoint. If they match, each stored leaf hash up to the last checkpoint is authentic
   (collision resistance of SHA-256): they become the reference for step 2.
2. Every entry row is re-hashed (RFC 8785 bytes, RFC 9162 leaf hash) and compared with the
   authentic leaf hash at its index, so a problem is named by log index:
   ``altered`` (content changed), ``deleted`` (row missing), ``inserted`` (a row that is not a leaf of
   the log), ``reordered`` (a row whose content belongs at another index), ``missing`` (anchored on
   chain but absent from the database, e.g. an older copy restored).
3. If the stored hashes themselves were rewritten (a privileged user who also recomputed the tree),
   step 1 fails at a checkpoint; the entries are then folded directly and each checkpoint whose root
   differs is reported with its index range.

Both passes stream the tables in index order, in chunks: memory stays flat at any log size. They
cost about the same (the fold hashes every interior node; step 2 reads and hashes every row), so on a
large log step 2 runs in a second process (``spawn``; it opens the same database) while this one
folds: both cores, about half the wall time.
"""

from __future__ import annotations

import enum
import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from sqlalchemy import func, select
from web3.contract.contract import Contract

from ledger.chain.client import Chain
from ledger.log import layout, merkle
from ledger.store.db import Store
from ledger.store.models import Checkpoint, LogEntry, LogHead, LogNode

CHUNK = 50_000
# Entries from which step 2 runs in a second process: below, starting one (~1 s) costs more than
# the pass it takes over.
PARALLEL_MIN = 1_000_000


class ProblemKind(enum.StrEnum):
    ALTERED = "altered"
    DELETED = "deleted"
    INSERTED = "inserted"
    REORDERED = "reordered"
    MISSING = "missing"
    TREE_REWRITTEN = "tree_rewritten"
    CHECKPOINT_MISMATCH = "checkpoint_mismatch"


@dataclass(frozen=True)
class Problem:
    kind: ProblemKind
    index: int | None
    detail: str
    end: int | None = None  # for range problems: [index, end)

    def describe(self) -> str:
        where = f"index {self.index}" if self.end is None else f"indices {self.index}..{(self.end or 0) - 1}"
        return f"{self.kind.value:<15} {where}: {self.detail}"


@dataclass
class Report:
    entries: int = 0
    leaves: int = 0
    anchored_size: int = 0
    checkpoints: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, object]:
        return {
            "intact": self.intact,
            "entries": self.entries,
            "anchored_size": self.anchored_size,
            "checkpoints_checked": self.checkpoints,
            "problems": [
                {"kind": p.kind.value, "index": p.index, "end": p.end, "detail": p.detail}
                for p in self.problems
            ],
        }


Progress = Callable[[int], None]


def chain_checkpoints(
    chain: Chain, anchor: Contract, hint_blocks: Iterable[int] = ()
) -> list[tuple[int, bytes]]:
    """All (size, root) pairs anchored on chain, from the contract's ``Anchored`` events, in size order.

    The database's checkpoint rows say in which blocks to look (reading single blocks is much
    cheaper than scanning the chain); they are only a hint: if the events found there are fewer than
    the contract's own ``count()``, the whole chain is scanned."""
    expected = int(chain.call(anchor.functions.count()))
    pairs: dict[int, bytes] = {}

    def collect(from_block: int, to_block: int | str) -> None:
        events = chain._rpc(
            lambda: anchor.events.Anchored().get_logs(from_block=from_block, to_block=to_block)
        )
        pairs.update((int(e["args"]["treeSize"]), bytes(e["args"]["root"])) for e in events)

    for block in sorted(set(hint_blocks)):
        if block > 0:
            collect(block, block)
    if len(pairs) != expected:
        pairs.clear()
        collect(0, "latest")
    return sorted(pairs.items())


def _leaf_chunks(store: Store, end: int) -> Iterator[list[tuple[int, bytes]]]:
    for start in range(0, end, CHUNK):
        low, high = layout.leaf_key_range(start, min(end, start + CHUNK))
        with store.read_core() as conn:  # Core rows: the ORM's result processing doubles a row's cost
            rows = conn.execute(
                select(LogNode.id, LogNode.hash)
                .where(
                    LogNode.id >= low,
                    LogNode.id < high,
                    LogNode.id.op("&")(layout.POSITION_MASK) < layout.TILE_WIDTH,
                )
                .order_by(LogNode.id)
            )
            chunk = [(layout.leaf_index(int(k)), bytes(h)) for k, h in rows]
        yield chunk  # outside the transaction: a suspended generator must hold no snapshot


def _entry_chunks(store: Store, start: int, end: int) -> Iterator[list[tuple[int, bytes]]]:
    for a in range(start, end, CHUNK):
        with store.read_core() as conn:
            rows = conn.execute(
                select(LogEntry.idx, LogEntry.entry)
                .where(LogEntry.idx >= a, LogEntry.idx < min(end, a + CHUNK))
                .order_by(LogEntry.idx)
            )
            chunk = [(int(i), bytes(e)) for i, e in rows]
        yield chunk


def _fold_check(
    hashes: Iterable[list[tuple[int, bytes]]], checkpoints: Sequence[tuple[int, bytes]]
) -> tuple[int, int | None]:
    """Fold consecutive leaf hashes from index 0; return (leaves folded, the first checkpoint size
    whose root differs or that the rows do not reach, or None when every checkpoint matches).

    A gap in the indices ends the fold: the tree past a gap cannot be rebuilt from these rows."""
    frontier = merkle.CompactRange.empty()
    pending = deque(checkpoints)
    expected = 0
    buf: list[bytes] = []
    for chunk in hashes:
        gap = False
        for idx, h in chunk:
            if idx != expected:
                gap = True
                break
            buf.append(h)
            expected += 1
            if pending and expected == pending[0][0]:
                frontier = frontier.extend(buf)
                buf.clear()
                if frontier.root() != pending[0][1]:
                    return expected, pending[0][0]
                pending.popleft()
        if gap:
            break
        frontier = frontier.extend(buf)
        buf.clear()
    return expected, (pending[0][0] if pending else None)


def _fold_stored_leaves(
    store: Store,
    span: int,
    checkpoints: Sequence[tuple[int, bytes]],
    report: Report,
    progress: Progress | None,
) -> tuple[int, int | None]:
    """Step 1: are the stored leaf hashes the anchored ones? Returns (leaves folded, the first
    checkpoint size they fail, or None) and reports what that means."""

    def chunks() -> Iterator[list[tuple[int, bytes]]]:
        for chunk in _leaf_chunks(store, span):
            yield chunk
            if progress is not None and chunk:
                progress(chunk[-1][0] + 1)

    leaves_seen, failed_at = _fold_check(chunks(), checkpoints)
    report.leaves = leaves_seen
    anchored = checkpoints[-1][0] if checkpoints else 0
    trusted = anchored if failed_at is None else max([s for s, _ in checkpoints if s < failed_at] or [0])
    if failed_at is not None and leaves_seen < failed_at:
        report.problems.append(
            Problem(
                ProblemKind.MISSING,
                leaves_seen,
                f"anchored on chain (size {anchored}) but absent from the database",
                end=anchored,
            )
        )
    elif failed_at is not None:
        report.problems.append(
            Problem(
                ProblemKind.TREE_REWRITTEN,
                trusted,
                f"stored tree hashes do not produce the root anchored at size {failed_at}",
                end=failed_at,
            )
        )
    return leaves_seen, failed_at


@dataclass
class RowFindings:
    """Step 2's findings: index -> recomputed hash of the row there (``b""``: no row), authentic
    leaf hash -> its index (for the rows that mismatch), and the rows that are no leaf."""

    mismatched: dict[int, bytes] = field(default_factory=dict)
    displaced: dict[bytes, int] = field(default_factory=dict)
    inserted: list[Problem] = field(default_factory=list)


def _check_rows(store: Store, span: int, progress: Progress | None = None) -> RowFindings:
    """Step 2: each entry row against the stored leaf hash at its index."""
    found = RowFindings()
    mismatched, displaced = found.mismatched, found.displaced
    leaf_iter = _leaf_chunks(store, span)
    for chunk_start in range(0, span, CHUNK):
        chunk_end = min(span, chunk_start + CHUNK)
        leaf_buf = dict(next(leaf_iter, []))
        rows = dict(next(_entry_chunks(store, chunk_start, chunk_end), []))
        for idx in range(chunk_start, chunk_end):
            stored_leaf = leaf_buf.get(idx)
            row = rows.get(idx)
            if row is None:
                if stored_leaf is not None:
                    mismatched[idx] = b""
                    displaced[stored_leaf] = idx
                continue
            recomputed = merkle.leaf_hash(row)
            if stored_leaf is None:
                found.inserted.append(Problem(ProblemKind.INSERTED, idx, "row is not a leaf of the log"))
            elif recomputed != stored_leaf:
                mismatched[idx] = recomputed
                displaced[stored_leaf] = idx
        if progress is not None:
            progress(chunk_end)
    return found


def _check_rows_apart(url: str, span: int) -> RowFindings:
    """Step 2 in a process of its own, on its own connection to the same database."""
    store = Store(url)
    try:
        return _check_rows(store, span)
    finally:
        store.close()


def verify(
    store: Store,
    chain: Chain,
    anchor: Contract,
    *,
    progress: Progress | None = None,
    parallel: bool | None = None,
) -> Report:
    """The audit (module docstring). ``parallel``: step 2 in a second process — None decides by
    size (``PARALLEL_MIN``); never for a database no other process can open (SQLite in memory)."""
    report = Report()
    with store.read() as session:
        hints = [int(b) for b in session.scalars(select(Checkpoint.block_number))]
    checkpoints = chain_checkpoints(chain, anchor, hints)
    report.checkpoints = len(checkpoints)
    anchored = checkpoints[-1][0] if checkpoints else 0
    report.anchored_size = anchored
    with store.read() as session:
        log_size = int(session.execute(select(LogHead.size).where(LogHead.id == 1)).scalar_one())
        max_entry = session.execute(select(func.max(LogEntry.idx))).scalar()
        report.entries = int(session.execute(select(func.count()).select_from(LogEntry)).scalar_one())
        stored_cps = {int(s): bytes(r) for s, r in session.execute(select(Checkpoint.size, Checkpoint.root))}
    for size, root in checkpoints:
        if size in stored_cps and stored_cps[size] != root:
            report.problems.append(
                Problem(
                    ProblemKind.CHECKPOINT_MISMATCH,
                    size,
                    "the database's copy of this checkpoint differs from the chain",
                )
            )
    span = max(log_size, anchored, (max_entry + 1) if max_entry is not None else 0)
    apart = store.shareable and (span >= PARALLEL_MIN if parallel is None else parallel)
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) if apart else None
    try:
        rows_apart = pool.submit(_check_rows_apart, store.url, span) if pool is not None else None
        leaves_seen, failed_at = _fold_stored_leaves(
            store, span, checkpoints, report, progress if apart else None
        )
        found = rows_apart.result() if rows_apart is not None else _check_rows(store, span, progress)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    if progress is not None:
        progress(span)
    report.problems.extend(found.inserted)
    mismatched, displaced = found.mismatched, found.displaced
    for idx, recomputed in sorted(mismatched.items()):
        if recomputed == b"":
            report.problems.append(Problem(ProblemKind.DELETED, idx, "the row at this index was deleted"))
        elif recomputed in displaced and displaced[recomputed] != idx:
            report.problems.append(
                Problem(
                    ProblemKind.REORDERED,
                    idx,
                    f"the row here is the entry anchored at index {displaced[recomputed]}",
                )
            )
        else:
            report.problems.append(
                Problem(ProblemKind.ALTERED, idx, "the row's content differs from the anchored entry")
            )

    # Pass 3: if the stored tree is not trustworthy, fold the rows themselves against the chain.
    if failed_at is not None and leaves_seen >= failed_at:
        trusted = max([s for s, _ in checkpoints if s < failed_at] or [0])
        _, rows_failed = _fold_check(
            ([(i, merkle.leaf_hash(e)) for i, e in chunk] for chunk in _entry_chunks(store, 0, span)),
            checkpoints,
        )
        if rows_failed is not None:
            report.problems.append(
                Problem(
                    ProblemKind.ALTERED,
                    trusted,
                    f"the rows do not produce the root anchored at size {rows_failed}",
                    end=rows_failed,
                )
            )
    report.problems.sort(key=lambda p: (p.index if p.index is not None else -1, p.kind.value))
    return report
