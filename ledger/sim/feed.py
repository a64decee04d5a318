"""The events phase's producer: draw the city's access events, validate each as an
:class:`~ledger.log.events.AccessEvent` and reduce it to what the log appends
(:class:`~ledger.log.events.GatewayEntry`; with the recorder named in the plan, its encoded leaf,
:class:`~ledger.log.events.EncodedEntry`), in batches — in a second process by default.

Why a second process: of an event's ~150 µs on one core, drawing (~10 µs), validating (~22 µs) and
building the leaf (~10 µs) need nothing from the ledger, so the second core does them while the
first appends (docs/benchmarks.md, "Guiyang replay"). Every event is still fully validated — only
elsewhere; the process that appends trusts a :class:`GatewayEntry` because only
:meth:`AccessEvent.prepare` makes one (and an :class:`EncodedEntry` because only
:meth:`GatewayEntry.encoded` does).

Deterministic: the events depend on the plan (the city, the ids the ledger gave its parties,
items and grants, ``now``) and the random generator's state only, in one process or two
(``tests/unit/test_sim_feed.py`` pins the leaf hashes of a fixed city).

No I/O but the pipes to the producer process; the ledger is never touched here.
"""

from __future__ import annotations

import gc
import os
import pickle
import queue
import random
import signal
import subprocess
import sys
import threading
import traceback
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

from ledger.errors import LedgerError
from ledger.log.events import AccessEvent, EncodedEntry, EventKind, GatewayEntry
from ledger.sim import city, skew

GATEWAY = "gy-exchange-01"
BATCH = 10_000  # events per append transaction (LogService.record_prepared_events)
DEPTH = 3  # batches the producer process may run ahead of the appender


@dataclass
class Skew:
    """What the generated events look like, counted while they were generated."""

    events: int = 0
    denied: int = 0
    office_hours: int = 0
    with_grant: int = 0
    by_accessor: Counter[int] = field(default_factory=Counter)
    by_mode: Counter[str] = field(default_factory=Counter)
    by_resource: Counter[int] = field(default_factory=Counter)


@dataclass(frozen=True, kw_only=True)
class FeedPlan:
    """Everything the producer needs (picklable: it is handed to the producer process)."""

    model: skew.CityModel
    grant_terms: dict[tuple[int, int], skew.GrantTerms]
    grant_ids: dict[tuple[int, int], str]  # (accessor, item) -> on-chain grant id
    party_ids: Sequence[str]  # roster index -> party id
    resource_ids: Sequence[str]  # catalog index -> resource id
    total: int
    now: datetime
    days: int
    rng_state: tuple[Any, ...]  # random.Random.getstate() after the plan was drawn
    batch: int = BATCH
    # The party that will record the events: the producer encodes each leaf as it will be
    # recorded (``GatewayEntry.encoded``), so the appending process does not.
    recorded_by: str | None = None


class Producer:
    """Iterate for the batches; :attr:`skew` is complete once they are exhausted. A context
    manager only to stand in for :class:`ProcessFeed` (nothing to start or stop in-process)."""

    def __init__(self, plan: FeedPlan) -> None:
        if plan.batch < 1:
            raise ValueError("batch must be >= 1")
        self.plan = plan
        self.skew = Skew()
        self._working: dict[date, bool] = {}

    def __enter__(self) -> Producer:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        pass

    def __iter__(self) -> Iterator[list[GatewayEntry | EncodedEntry]]:
        plan = self.plan
        rng = random.Random()
        rng.setstate(plan.rng_state)
        drafts = skew.draw_events(
            plan.model, plan.grant_terms, total=plan.total, now=plan.now, days=plan.days, rng=rng
        )
        batch: list[GatewayEntry | EncodedEntry] = []
        for draft in drafts:
            batch.append(self.entry(draft))
            if len(batch) == plan.batch:
                yield batch
                batch = []
        if batch:
            yield batch

    def entry(self, draft: skew.Draft) -> GatewayEntry | EncodedEntry:
        """One draft as a validated event (and counted in :attr:`skew`)."""
        plan = self.plan
        item = plan.model.catalog[draft.resource]
        stats = self.skew
        stats.events += 1
        stats.by_accessor[draft.accessor] += 1
        stats.by_mode[draft.mode.value] += 1
        stats.by_resource[draft.resource] += 1
        stats.denied += draft.denied_reason is not None
        stats.office_hours += self._office(draft.time)
        grant = plan.grant_ids.get((draft.accessor, draft.resource))
        stats.with_grant += grant is not None
        prepared = AccessEvent(
            event_id=f"sim-{draft.seq:09d}",
            kind=EventKind.DENIED if draft.denied_reason else EventKind.ACCESS,
            accessor=plan.party_ids[draft.accessor],
            provider=plan.party_ids[item.provider],
            resource=plan.resource_ids[draft.resource],
            grant=grant,
            purpose=draft.purpose,
            fields=list(draft.fields),
            mode=draft.mode,
            record_count=draft.record_count,
            query_hash=draft.query_hash,
            result_hash=draft.result_hash,
            time=draft.time,
            gateway=GATEWAY,
            reason=draft.denied_reason,
            level=item.level,
        ).prepare()
        return prepared.encoded(recorded_by=plan.recorded_by) if plan.recorded_by else prepared

    def _office(self, moment: datetime) -> bool:
        local = moment.astimezone(city.CHINA_TZ)
        day = local.date()
        working = self._working.get(day)
        if working is None:
            working = skew.is_office_hours(datetime.combine(day, skew.OFFICE_START, city.CHINA_TZ))
            self._working[day] = working
        return working and skew.OFFICE_START <= local.time() < skew.OFFICE_END


class ProducerFailed(LedgerError):
    code = "producer_failed"


class ProcessFeed:
    """The :class:`Producer` in a child process, ``python -m ledger.sim.feed``: a fresh
    interpreter (no database connection, chain or thread inherited, and unlike
    ``multiprocessing``'s ``spawn`` it never re-imports the caller's main module). The plan goes
    down the child's stdin, length-prefixed pickled messages come back on its stdout: each batch,
    then the counts (or the failure, as text). The child runs up to :data:`DEPTH` batches ahead.

    Use as a context manager; iterate once; then :attr:`skew` holds the producer's counts. Leaving
    early (an append failed) stops the child. A child that dies mid-way is reported
    (:class:`ProducerFailed`), never waited on."""

    def __init__(self, plan: FeedPlan) -> None:
        self._plan = plan
        self._child: subprocess.Popen[bytes] | None = None
        self.skew = Skew()

    def __enter__(self) -> ProcessFeed:
        root = str(Path(__file__).resolve().parents[2])  # the directory holding this `ledger`
        path = os.environ.get("PYTHONPATH")
        env = {**os.environ, "PYTHONPATH": root + (os.pathsep + path if path else "")}
        self._child = subprocess.Popen(
            [sys.executable, "-m", "ledger.sim.feed"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
        )
        assert self._child.stdin is not None
        try:
            with self._child.stdin as down:
                down.write(pickle.dumps(self._plan, protocol=pickle.HIGHEST_PROTOCOL))
        except BrokenPipeError:
            pass  # the child is gone already: iterating reports how it ended
        return self

    @property
    def pid(self) -> int | None:
        """The child's process id, once started."""
        return self._child.pid if self._child is not None else None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        child = self._child
        if child is None:
            return
        if child.poll() is None:
            child.terminate()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()

    def __iter__(self) -> Iterator[list[GatewayEntry | EncodedEntry]]:
        child = self._child
        if child is None or child.stdout is None:
            raise ProducerFailed("the event producer process was not started (use `with`)")
        up = child.stdout
        while True:
            header = up.read(8)
            size = int.from_bytes(header, "big")
            message = up.read(size) if len(header) == 8 else b""
            if len(message) < size or not message:
                raise ProducerFailed(
                    f"the event producer process exited (code {child.wait()}) before its last batch"
                )
            what, value = pickle.loads(message)
            if what == "batch":
                yield value
            elif what == "done":
                self.skew = value
                return
            else:
                raise ProducerFailed(f"the event producer process failed:\n{value}")


def serve(down: BinaryIO, up: BinaryIO) -> None:
    """The child's side of :class:`ProcessFeed`: read the plan, write the messages. A writer
    thread sends while the producer draws the next batches (up to :data:`DEPTH` queued)."""
    outbox: queue.Queue[bytes | None] = queue.Queue(maxsize=DEPTH)

    def send() -> None:
        while (message := outbox.get()) is not None:
            up.write(len(message).to_bytes(8, "big"))
            up.write(message)
            up.flush()

    def post(what: str, value: object) -> None:
        outbox.put(pickle.dumps((what, value), protocol=pickle.HIGHEST_PROTOCOL))

    writer = threading.Thread(target=send, name="sharetrail-sim-feed-writer", daemon=True)
    writer.start()
    # Young collections only, rarely: the producer allocates tens of containers an event and
    # keeps none (46 against 53–77 µs an event with the default thresholds, full Guiyang catalog).
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    try:
        producer = Producer(pickle.load(down))
        for batch in producer:
            post("batch", batch)
        post("done", producer.skew)
    except Exception:  # reported to the parent, which raises ProducerFailed
        post("error", traceback.format_exc())
    finally:
        outbox.put(None)
        writer.join()


def _main() -> None:
    """``python -m ledger.sim.feed``: messages on the real stdout; anything printed goes to stderr.
    Ctrl-C is the parent's to handle (it stops the child on its way out)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    up = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    # Run the imported module's serve, so pickled classes are ledger.sim.feed's, not __main__'s.
    from ledger.sim.feed import serve as imported_serve

    with up:
        imported_serve(sys.stdin.buffer, up)


if __name__ == "__main__":
    _main()
