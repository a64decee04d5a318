"""The driver of ``sharetrail simulate``: a synthetic city written through the real services.

Phases, each timed and shown with a progress bar:

1. *open* — ``Ledger.open`` on a fresh data directory (migrations, keys, contract deployment);
2. *parties* — the operator, a regulator and the departments, ``PartyService.register`` (one chain
   transaction each);
3. *catalog* — ``CatalogService.create_many`` per provider (the versions' metadata hashes on chain,
   100 items a ``multicall`` transaction);
4. *requests* — ``ShareService.submit`` (and ``decide`` for conditional items): the grants on chain;
5. *events* — access events drawn, validated and encoded by :mod:`ledger.sim.feed` (in a second
   process, so the second core does that work) and appended through the log's bulk path,
   ``LogService.record_prepared_events`` as the operator, 10,000 per transaction, with an anchor
   every ``anchor_every`` events as the anchoring loop would do — inside ``LogStore.bulk_load``
   (unless ``defer_indexes`` is off): the trail's indexes of ``log_entries`` are left out while the
   events are appended and
5a. *trail indexes* — built once at the end, one sort each, as a database import does;
6. *subject index* — ``SubjectIndexer`` catches up: the data subjects the events name, indexed in
   large sorted batches (the service runs it in the background, off the append);
7. *anchor* — ``Anchorer.anchor_once`` until nothing pends (this phase also counts the anchors of 5);
8. *verify* — the full integrity audit, :func:`ledger.log.verify.verify`.

Level-4 items, whose every access is its own chain transaction, and level-3 co-signatures are not
simulated: both are chain-bound steps a bench measures on its own (``sharetrail bench share``).
"""

from __future__ import annotations

import gc
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text
from sqlalchemy import func, select

from ledger.errors import Conflict, LedgerError
from ledger.identity.parties import NewParty
from ledger.identity.uscc import make_uscc
from ledger.log.verify import verify
from ledger.runtime import Ledger
from ledger.settings import Settings
from ledger.sharing.catalog import BULK_CHUNK, FieldSpec, ResourceSpec
from ledger.sharing.requests import Scope
from ledger.sim import city, feed, skew
from ledger.sim.report import Phase, SimReport
from ledger.store.models import LogEntry, Party, Resource, ShareRequest
from ledger.types import PartyKind, ShareType, Signing

ANCHOR_EVERY = 50_000
PROCESS_MIN_EVENTS = 50_000  # below this, starting a producer process costs more than it saves
LEGAL_BASIS = "《贵阳市政府数据共享开放条例》"
OPERATOR = ("贵阳块数据城市建设有限公司", 21)
REGULATOR = ("贵阳市公安局网络安全保卫支队（数据安全监管）", 41)
ROSTER_SEQ = 1000  # credit-code sequence numbers of the departments start here


@dataclass(frozen=True, kw_only=True)
class SimOptions:
    scale: city.Scale = field(default_factory=city.Scale)
    data_dir: Path
    db_url: str | None = None
    seed: int = 2021
    anchor_every: int = ANCHOR_EVERY
    batch: int = feed.BATCH  # events per append transaction
    # Draw and validate the events in a second process (ledger.sim.feed): True always, False never,
    # None when there are at least PROCESS_MIN_EVENTS of them.
    producer_process: bool | None = None
    # SQLite's page cache per connection (SHARETRAIL_SQLITE_CACHE_MIB): a city's log touches GBs of
    # index pages, which the server's default (256 MiB) would read back from the OS again and again.
    sqlite_cache_mib: int = 4096
    # Append the events inside LogStore.bulk_load (the trail's indexes built once afterwards): the
    # city is an import into a fresh ledger, which nothing queries until it is done.
    defer_indexes: bool = True


def default_data_dir(seed: int, now: datetime | None = None) -> Path:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return Path(".sharetrail-sim") / f"{stamp}-seed{seed}"


class Simulation:
    def __init__(self, options: SimOptions, ledger: Ledger, progress: Progress) -> None:
        self.options = options
        self.ledger = ledger
        self.progress = progress
        self.rng = random.Random(options.seed)
        self.now = datetime.now(UTC)
        self.report = SimReport(scale=options.scale)
        scale = options.scale
        self.departments = city.roster(scale.departments)
        self.catalog = city.plan_catalog(self.departments, scale.resources, self.rng)
        self.model = skew.CityModel(self.departments, self.catalog)
        self.model.shuffle(self.rng)
        self.requests = skew.plan_requests(self.model, scale.grants, self.rng)
        self.party_ids: list[str] = []
        self.resource_ids: list[str] = []
        self.grant_ids: dict[tuple[int, int], str] = {}
        self.grant_terms: dict[tuple[int, int], skew.GrantTerms] = {}
        self.anchor_seconds = 0.0
        self.anchors = 0
        self.report.departments = self.departments

    # -- phases -----------------------------------------------------------------------------------
    def _phase(self, name: str, total: int) -> tuple[TaskID, float]:
        return self.progress.add_task(name, total=max(total, 1)), time.perf_counter()

    def _done(self, task: TaskID, started: float, phase: Phase, *, excluded: float = 0.0) -> None:
        """Close the bar; the phase took the time since ``started`` less ``excluded`` (the anchors
        taken during ingestion, counted in the anchor phase)."""
        self.progress.update(task, completed=max(phase.count, 1))
        phase.seconds = time.perf_counter() - started - excluded
        self.report.phases.append(phase)

    def parties(self) -> None:
        ledger = self.ledger
        registrar = ledger.parties.get(ledger.bootstrap.registrar_id)
        total = len(self.departments) + 2
        task, started = self._phase("parties", total)
        self.operator, _ = ledger.parties.register(
            registrar, NewParty(PartyKind.OPERATOR, OPERATOR[0], make_uscc(OPERATOR[1], authority="9"))
        )
        ledger.parties.register(
            registrar, NewParty(PartyKind.REGULATOR, REGULATOR[0], make_uscc(REGULATOR[1]))
        )
        self.progress.advance(task, 2)
        for d in self.departments:
            party, _ = ledger.parties.register(
                registrar,
                NewParty(PartyKind.DEPARTMENT, d.name, make_uscc(ROSTER_SEQ + d.seq, division=d.division)),
            )
            self.party_ids.append(party.id)
            self.progress.advance(task)
        full = city.GUIYANG_DEPARTMENTS + 2
        self._done(task, started, Phase("parties (register, 1 tx each)", total, "parties", 0, full))

    def catalog_items(self) -> None:
        task, started = self._phase("catalog", len(self.catalog))
        providers = [self.ledger.parties.get(pid) for pid in self.party_ids]
        # The plan interleaves providers; create_many publishes one provider's items, BULK_CHUNK per
        # transaction. Each provider's items go in one call, in provider order, and their ids are put
        # back at their places in the plan, which the events refer to by position.
        positions: dict[int, list[int]] = {}
        for n, plan in enumerate(self.catalog):
            positions.setdefault(plan.provider, []).append(n)
        ids = [""] * len(self.catalog)
        for provider in sorted(positions):
            specs = [
                ResourceSpec(
                    code=plan.code,
                    name=plan.name,
                    format="table",
                    share_type=plan.share_type,
                    open_type=plan.open_type,
                    level=plan.level,
                    update_frequency=plan.update_frequency,
                    legal_basis=LEGAL_BASIS,
                    fields=[FieldSpec(f.name, f.type, f.sensitive, f.masking) for f in plan.fields],
                )
                for plan in (self.catalog[n] for n in positions[provider])
            ]
            created = self.ledger.catalog.create_many(providers[provider], specs)
            for n, resource in zip(positions[provider], created, strict=True):
                ids[n] = resource.id
            self.progress.advance(task, len(specs))
        self.resource_ids.extend(ids)
        label = f"catalog (create_many, {BULK_CHUNK} per tx)"
        phase = Phase(label, len(self.catalog), "items", 0, city.GUIYANG_RESOURCES)
        self._done(task, started, phase)

    def share_requests(self) -> None:
        task, started = self._phase("requests", len(self.requests))
        parties = [self.ledger.parties.get(pid) for pid in self.party_ids]
        window = (self.now - timedelta(days=self.options.scale.days + 1), self.now + timedelta(days=365))
        for plan in self.requests:
            resource = self.catalog[plan.resource]
            requester = parties[plan.requester]
            request = self.ledger.sharing.submit(
                requester,
                resource_id=self.resource_ids[plan.resource],
                purpose_code=plan.terms.purpose,
                purpose_text=f"{requester.name}履行职责所需",
                legal_basis=LEGAL_BASIS,
                scope=Scope(
                    fields=list(plan.terms.fields),
                    valid_from=window[0],
                    valid_until=window[1],
                    mode=plan.terms.mode,
                    max_records=100_000,
                    max_accesses=1_000_000,
                ),
                signing=Signing.CUSTODIAL,
            )
            if resource.share_type is ShareType.CONDITIONAL:
                request = self.ledger.sharing.decide(
                    parties[resource.provider],
                    request.id,
                    approve=plan.approve,
                    reason="符合共享条件" if plan.approve else "申请用途与履职依据不符",
                    conditions=None,
                    signing=Signing.CUSTODIAL,
                )
            if plan.approve:
                if request.grant_id is None:
                    raise LedgerError(
                        f"request {request.id} was approved but holds no grant", code="no_grant"
                    )
                self.grant_ids[(plan.requester, plan.resource)] = request.grant_id
                self.grant_terms[(plan.requester, plan.resource)] = plan.terms
            self.progress.advance(task)
        scale_up = city.DEFAULT_GRANTS / self.options.scale.grants if self.options.scale.grants else 0
        phase = Phase("requests (submit + decide)", len(self.requests), "requests", 0, None)
        phase.full_scale = round(len(self.requests) * scale_up) if scale_up else None
        self._done(task, started, phase)

    def events(self) -> None:
        options = self.options
        total = options.scale.events
        task, started = self._phase("events", total)
        plan = feed.FeedPlan(
            model=self.model,
            grant_terms=self.grant_terms,
            grant_ids=self.grant_ids,
            party_ids=tuple(self.party_ids),
            resource_ids=tuple(self.resource_ids),
            total=total,
            now=self.now,
            days=options.scale.days,
            rng_state=self.rng.getstate(),
            batch=options.batch,
            recorded_by=self.operator.id,
        )
        use_process = options.producer_process
        in_process = not use_process if use_process is not None else total < PROCESS_MIN_EVENTS
        producer: feed.Producer | feed.ProcessFeed = (
            feed.Producer(plan) if in_process else feed.ProcessFeed(plan)
        )
        since_anchor = done = 0
        tail_from = total - total // 10
        tail_start = (started, 0.0)
        with _young_gc(), producer:
            for batch in producer:
                self.ledger.log.record_prepared_events(self.operator, batch)
                self.progress.advance(task, len(batch))
                since_anchor += len(batch)
                done += len(batch)
                if done <= tail_from:
                    tail_start = (time.perf_counter(), self.anchor_seconds)
                if since_anchor >= options.anchor_every and done < total:
                    self._anchor()
                    since_anchor = 0
        self.report.skew = producer.skew
        where = "drawn in-process" if in_process else "drawn in a 2nd process"
        name = f"events (record_prepared_events, {options.batch}/transaction, {where})"
        phase = Phase(name, total, "events", 0, city.GUIYANG_EVENTS)
        self._done(task, started, phase, excluded=self.anchor_seconds)
        if total >= 10 * options.batch:
            done_at, anchored = time.perf_counter(), self.anchor_seconds
            phase.tail = (total - tail_from, done_at - tail_start[0] - (anchored - tail_start[1]))

    def anchor(self) -> None:
        task = self.progress.add_task("anchor", total=1)
        while self._anchor():
            pass
        self.progress.update(task, completed=1)
        full = -(-city.GUIYANG_EVENTS // self.options.anchor_every)
        phase = Phase("anchor (anchor_once, all anchors)", self.anchors, "anchors", self.anchor_seconds, full)
        self.report.phases.append(phase)

    def subject_index(self) -> None:
        indexer = self.ledger.subject_indexer
        at, size = indexer.status()
        task, started = self._phase("subject index", size - at)
        done = 0
        while (n := indexer.process()) > 0:
            done += n
            self.progress.update(task, completed=done)
        phase = Phase("subject index (catch-up)", done, "entries", 0, city.GUIYANG_EVENTS)
        self._done(task, started, phase)

    def verify_all(self) -> None:
        ledger = self.ledger
        size = ledger.log.log.size()
        task, started = self._phase("verify", size)
        report = verify(
            ledger.store,
            ledger.chain,
            ledger.contracts["Anchor"],
            progress=lambda done: self.progress.update(task, completed=min(done, size)),
        )
        self.report.verify = report
        self._done(task, started, Phase("verify (full audit)", size, "entries", 0, city.GUIYANG_EVENTS))

    # -- helpers ----------------------------------------------------------------------------------
    def _anchor(self) -> bool:
        started = time.perf_counter()
        checkpoint = self.ledger.anchorer.anchor_once()
        self.anchor_seconds += time.perf_counter() - started
        self.anchors += checkpoint is not None
        return checkpoint is not None

    def count(self) -> None:
        with self.ledger.store.read() as session:
            parties = dict(session.execute(select(Party.kind, func.count()).group_by(Party.kind)).all())
            statuses = dict(
                session.execute(select(ShareRequest.status, func.count()).group_by(ShareRequest.status)).all()
            )
            kinds = dict(session.execute(select(LogEntry.kind, func.count()).group_by(LogEntry.kind)).all())
            resources = session.scalar(select(func.count()).select_from(Resource)) or 0
        counts = self.report.counts
        counts.update({f"parties: {k.value}": int(v) for k, v in sorted(parties.items())})
        counts["catalog items"] = int(resources)
        counts.update({f"share requests: {k.value}": int(v) for k, v in sorted(statuses.items())})
        counts.update({f"log entries: {k}": int(v) for k, v in sorted(kinds.items())})
        counts["log size"] = self.ledger.log.log.size()
        latest = self.ledger.log.log.latest_checkpoint()
        counts["anchored size"] = latest.size if latest else 0

    def run(self) -> SimReport:
        if self.ledger.log.log.size() or len(self.ledger.parties.list()) > 1:
            raise Conflict(
                "this data directory / database already holds a ledger; simulate writes a fresh city "
                "(choose a new --data-dir or an empty --db-url)",
                code="not_empty",
            )
        self.parties()
        self.catalog_items()
        self.share_requests()
        if self.options.defer_indexes:
            with self.ledger.log.log.bulk_load():
                self.events()
                started = time.perf_counter()
                task = self.progress.add_task("indexes", total=1)
            # bulk_load's exit has built the indexes
            self.progress.update(task, completed=1)
            size = self.ledger.log.log.size()
            phase = Phase("trail indexes (built after the events)", size, "entries", 0, city.GUIYANG_EVENTS)
            phase.seconds = time.perf_counter() - started
            self.report.phases.append(phase)
        else:
            self.events()
        self.subject_index()
        self.anchor()
        self.verify_all()
        self.count()
        return self.report


def simulate(options: SimOptions, *, console: Console) -> SimReport:
    """Open a ledger on ``options.data_dir`` and run every phase; the report says whether verify held."""
    options.scale.validate()
    with _progress(console) as progress:
        task = progress.add_task("open", total=1)
        started = time.perf_counter()
        settings = Settings(
            data_dir=options.data_dir,
            db_url=options.db_url,
            anchor_loop=False,
            sqlite_cache_mib=options.sqlite_cache_mib,
        )
        with Ledger.open(settings) as ledger:
            progress.update(task, completed=1)
            opened = Phase(
                "open (migrate, keys, contracts)", 1, "ledger", time.perf_counter() - started, None
            )
            simulation = Simulation(options, ledger, progress)
            simulation.report.phases.append(opened)
            return simulation.run()


@contextmanager
def _young_gc() -> Iterator[None]:
    """Keep Python's cyclic GC to the events phase's own young objects.

    The phase allocates tens of container objects per event (rows, leaves, the producer's
    batches), so at the default thresholds the collector runs every 700 allocations and, every
    hundred runs or so, traverses the whole heap — the chain's, the contracts' and the ORM's
    objects, none of them garbage. Measured in the appending process: ~120 µs CPU an event
    with the defaults, ~77 µs with the heap frozen and young collections every 100,000
    allocations (docs/benchmarks.md, the simulate section). Restored afterwards."""
    gc.collect()
    gc.freeze()
    previous = gc.get_threshold()
    gc.set_threshold(100_000, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        gc.unfreeze()


class _Rate(ProgressColumn):
    """Items per second of the task so far."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f}/s" if speed else "", style="progress.data.speed")


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description:<9}"),
        BarColumn(),
        MofNCompleteColumn(),
        _Rate(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )
