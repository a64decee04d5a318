"""The Merkle log's figures, each beside its naive alternative or its competitor, in one run.

1. **Acknowledged events/s** — ``LogStore.append`` in batches of 1000 (one durable transaction per
   batch: SQLite ``synchronous=FULL``, PostgreSQL with ``fsync`` on), the HTTP batch API
   ``POST /v1/access-events`` on a uvicorn server in its own process, beside the naive design of
   one chain transaction per event (``Anchor.recordLeaf`` on the embedded chain, each waited for:
   what recording every event on chain costs).
2. **Append and inclusion proofs vs pymerkle 7** at each size: ours durable (SQLite; a commit
   per 1,000 entries, and per 10,000 — nearer pymerkle's one bulk transaction) against
   ``pymerkle.InmemoryTree`` and ``pymerkle.SqliteTree`` on the same entry bytes (their roots are
   checked equal to ours: the same RFC 9162 tree), and the same random proofs on each.
3. **Inclusion proof latency** of single ``LogStore.inclusion_proof`` calls on a large log.
4. **Ack → anchored** while recording ~1k events/s through ``LogService.record_gateway_events``
   with the anchoring loop running on the embedded chain.
5. **Full ``verify``** of an anchored log, events per second.

Beside ``LogStore.inclusion_proof`` (two SQL transactions per proof: the size check and the node
fetch) two read paths are timed that use only the public ``LogStore.nodes`` and the proof
planning of :mod:`ledger.log.merkle`, so a server could adopt either as is: *batched* proofs (every
node of many proofs fetched together) and a read-through *node cache* (a stored perfect-subtree
hash never changes, so the cache needs no invalidation).
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.table import Table
from sqlalchemy import select

from ledger.canonical import canonical_json
from ledger.identity.parties import NewParty
from ledger.identity.uscc import make_uscc
from ledger.log import layout, merkle
from ledger.log.events import AccessEvent
from ledger.log.monitor import TileTree, tlog_tiles
from ledger.log.store import LogStore, NewEntry
from ledger.log.verify import chain_checkpoints, verify
from ledger.runtime import Ledger
from ledger.settings import Settings
from ledger.sharing.catalog import FieldSpec, ResourceSpec
from ledger.store.db import Store
from ledger.store.models import Checkpoint, Party
from ledger.types import OpenType, PartyKind, ShareType

BATCH = 1000
BUILD_BATCH = 5000
BULK_BATCH = 10_000  # entries per transaction of an import (the simulator's and replay's commits)
BOOTSTRAP_TOKEN = "st_bench-log-registrar-token"
Say = Callable[[str], None]


@dataclass(frozen=True)
class Sizes:
    ack_events: int = 100_000
    naive_events: int = 200
    http_events: int = 50_000
    compare: tuple[int, ...] = (100_000, 1_000_000)
    proofs: int = 2000
    proof_leaves: int = 10_000_000
    latency_samples: int = 2000
    anchor_seconds: float = 20.0
    anchor_rate: int = 1000  # events/s, in batches of anchor_batch every anchor_batch/anchor_rate s
    anchor_batch: int = 50
    verify_events: int = 200_000

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            ack_events=2000,
            naive_events=5,
            http_events=2000,
            compare=(2000,),
            proofs=100,
            proof_leaves=4000,
            latency_samples=100,
            anchor_seconds=2.0,
            verify_events=3000,
        )


@dataclass(frozen=True)
class Row:
    measure: str
    case: str
    n: int
    seconds: float
    value: float
    unit: str
    note: str = ""


@dataclass
class LogBenchResult:
    rows: list[Row] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def value(self, measure: str, case_prefix: str) -> float:
        for row in self.rows:
            if row.measure == measure and row.case.startswith(case_prefix):
                return row.value
        raise KeyError(f"{measure}: {case_prefix}")


M_ACK = "1 acknowledged events/s"
M_CMP = "2 vs pymerkle"
M_LAT = "3 proof latency"
M_ANCHOR = "4 ack → anchored"
M_VERIFY = "5 verify"


def _met(value: float, target: float, *, at_most: bool = False) -> str:
    ok = value <= target if at_most else value >= target
    return "met" if ok else "MISSED"


# --------------------------------------------------------------------------- events

# What the recorded events name. ``LogService`` records an exchange platform's event only if its
# resource is a published catalog entry (by id or code) and its purpose a vocabulary code
# (ledger/log/reported.py), so the benches that record through it publish this entry first.
BENCH_RESOURCE_CODE = "res-population-basic"
BENCH_PURPOSE = "social_assistance"
_BENCH_FIELDS = ("name", "id_number_hash", "address")


def bench_resource_body() -> dict[str, Any]:
    """``POST /v1/resources`` body of the benches' catalog entry (level 2: no per-access chain record)."""
    return {
        "code": BENCH_RESOURCE_CODE,
        "name": "人口基础信息（基准测试）",
        "format": "table",
        "share_type": "conditional",
        "open_type": "none",
        "level": 2,
        "update_frequency": "daily",
        "legal_basis": "《贵阳市政府数据共享开放条例》",
        "fields": [{"name": name} for name in _BENCH_FIELDS],
    }


def bench_resource(ledger: Ledger, provider: Party) -> str:
    """The benches' catalog entry on ``ledger``, published by ``provider`` unless it is there; its id."""
    existing = next((r for r in ledger.catalog.find() if r.code == BENCH_RESOURCE_CODE), None)
    if existing is not None:
        return existing.id
    body = bench_resource_body()
    spec = ResourceSpec(
        code=BENCH_RESOURCE_CODE,
        name=body["name"],
        format=body["format"],
        share_type=ShareType(body["share_type"]),
        open_type=OpenType(body["open_type"]),
        level=body["level"],
        update_frequency=body["update_frequency"],
        legal_basis=body["legal_basis"],
        fields=[FieldSpec(name) for name in _BENCH_FIELDS],
    )
    return ledger.catalog.create(provider, spec).id


def _leaf(prefix: str, i: int) -> dict[str, Any]:
    """A gateway leaf of realistic size (~300 bytes canonical), as ``AccessEvent.leaf`` builds it."""
    return {
        "event_id": f"{prefix}{i}",
        "kind": "access",
        "accessor": "bench-department",
        "resource": "res-population-basic",
        "purpose": "social-assistance-review",
        "fields": ["name", "id_number_hash", "address"],
        "mode": "masked",
        "record_count": 1 + i % 7,
        "time": "2026-01-01T08:00:00.000Z",
        "gateway": "bench-gateway-1",
        "recorded_by": "bench-operator",
        "v": 1,
    }


def _entries(prefix: str, start: int, n: int, encoded: Sequence[bytes] | None = None) -> list[NewEntry]:
    """Entries ``start … start + n - 1``; with ``encoded`` (indexed by entry number), each is given
    its canonical bytes and the store does not encode it."""
    now = datetime.now(UTC)
    return [
        NewEntry(
            event_id=f"{prefix}{i}",
            kind="access",
            time=now,
            event=_leaf(prefix, i),
            accessor="bench-department",
            resource="res-population-basic",
            encoded=None if encoded is None else encoded[i],
        )
        for i in range(start, start + n)
    ]


def _fill(log: LogStore, prefix: str, target: int, say: Say, batch: int = BUILD_BATCH) -> float:
    """Append until the log holds ``target`` leaves; return the seconds it took."""
    start = time.perf_counter()
    size = log.size()
    last_report = start
    while size < target:
        n = min(batch, target - size)
        log.append(_entries(prefix, size, n))
        size += n
        if time.perf_counter() - last_report > 30:
            last_report = time.perf_counter()
            say(f"  … {size:,} / {target:,} leaves")
    return time.perf_counter() - start


def _fill_encoded(log: LogStore, prefix: str, data: Sequence[bytes], batch: int) -> float:
    """Append ``data`` (the canonical bytes of ``_leaf(prefix, i)``, the same bytes pymerkle is
    given) in batches; return the seconds spent in ``LogStore.append`` alone — which still derives
    each entry's trail columns, hashes it, and writes the entry, its indexes, nodes and head."""
    seconds = 0.0
    for start in range(0, len(data), batch):
        entries = _entries(prefix, start, min(batch, len(data) - start), data)
        began = time.perf_counter()
        log.append(entries)
        seconds += time.perf_counter() - began
    return seconds


def _sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def _open_log(url: str) -> LogStore:
    store = Store(url)
    store.migrate()
    return LogStore(store)


# --------------------------------------------------------------------------- 1. acknowledged events/s


def ack_rate(url: str, n: int, case: str) -> Row:
    """``LogStore.append`` in batches of :data:`BATCH`, timed from the first call to the last commit."""
    log = _open_log(url)
    try:
        log.append(_entries("warm-", 0, 10))  # migrations and connection pool out of the timing
        batches = [_entries("ack-", b, min(BATCH, n - b)) for b in range(0, n, BATCH)]
        start = time.perf_counter()
        for entries in batches:
            log.append(entries)
        seconds = time.perf_counter() - start
    finally:
        log.store.close()
    return Row(M_ACK, case, n, seconds, n / seconds, "events/s")


def naive_rate(ledger: Ledger, n: int) -> Row:
    """The naive design: every event recorded on chain by its own transaction — ``Anchor.recordLeaf``
    (what per-access on-chain recording does for a level-4 resource), sent and waited for one by one.
    Indices far above the log's, so the bench never collides with real recordings."""
    anchorer = ledger.anchorer
    base = 1 << 60

    def record(i: int) -> None:
        leaf = hashlib.sha256(b"naive-%d" % i).digest()
        ledger.chain.transact(anchorer.contract.functions.recordLeaf(base + i, leaf), anchorer.operator)

    for i in range(3):  # warm-up: first estimates, nonces
        record(i)
    start = time.perf_counter()
    for i in range(3, 3 + n):
        record(i)
    seconds = time.perf_counter() - start
    case = "naive: one chain tx per event (embedded, Anchor.recordLeaf)"
    return Row(M_ACK, case, n, seconds, n / seconds, "events/s")


def http_rate(app_factory: str, n: int, workdir: Path, say: Say, *, db_url: str | None = None) -> Row:
    """``POST /v1/access-events`` in batches of 1000 against uvicorn in its own process.

    ``app_factory`` is the import string of ``create_app`` (``ledger`` does not import ``api``: the
    CLI hands it in). The server opens its own ledger from ``SHARETRAIL_*`` variables, anchoring
    loop off (this measures acknowledgement), on SQLite in its data directory or on ``db_url``
    (an empty database). Request bodies are encoded before the clock starts.
    """
    import httpx

    from ledger.bench.load import serve_uvicorn

    backend = "SQLite" if db_url is None else "PostgreSQL"
    env = {
        **os.environ,
        "SHARETRAIL_DATA_DIR": str(workdir / f"http-server-{backend.lower()}"),
        "SHARETRAIL_BOOTSTRAP_TOKEN": BOOTSTRAP_TOKEN,
        "SHARETRAIL_ANCHOR_LOOP": "false",
    }
    env.pop("SHARETRAIL_DB_URL", None)
    if db_url is not None:
        env["SHARETRAIL_DB_URL"] = db_url
    log_path = workdir / f"uvicorn-{backend.lower()}.log"
    with (
        serve_uvicorn(app_factory, env, log_path) as base,
        httpx.Client(base_url=base, timeout=120) as client,
    ):
        registrar = {"Authorization": f"Bearer {BOOTSTRAP_TOKEN}"}
        ids: dict[str, str] = {}
        tokens: dict[str, str] = {}
        for seq, kind in ((7001, PartyKind.OPERATOR), (7002, PartyKind.DEPARTMENT)):
            body = {"kind": kind.value, "name": f"bench {kind.value}", "uscc": make_uscc(seq)}
            created = client.post("/v1/parties", json=body, headers=registrar)
            created.raise_for_status()
            ids[kind.value], tokens[kind.value] = created.json()["id"], created.json()["token"]
        department = {"Authorization": f"Bearer {tokens[PartyKind.DEPARTMENT.value]}"}
        published = client.post("/v1/resources", json=bench_resource_body(), headers=department)
        if published.status_code != 201:
            raise RuntimeError(f"POST /v1/resources: {published.status_code} {published.text[:500]}")
        say(f"  HTTP server up on {base}; operator, department and its catalog entry registered")
        when = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
        bodies = [
            json.dumps(
                [
                    {
                        "event_id": f"http-{i}",
                        "accessor": ids[PartyKind.DEPARTMENT.value],
                        "resource": BENCH_RESOURCE_CODE,
                        "purpose": BENCH_PURPOSE,
                        "fields": list(_BENCH_FIELDS),
                        "mode": "masked",
                        "record_count": 1,
                        "time": when,
                        "gateway": "bench-gateway-1",
                    }
                    for i in range(b, min(n, b + BATCH))
                ]
            ).encode()
            for b in range(0, n, BATCH)
        ]
        headers = {
            "Authorization": f"Bearer {tokens[PartyKind.OPERATOR.value]}",
            "Content-Type": "application/json",
        }
        start = time.perf_counter()
        for raw in bodies:
            response = client.post("/v1/access-events", content=raw, headers=headers)
            if response.status_code != 201:
                raise RuntimeError(f"POST /v1/access-events: {response.status_code} {response.text[:500]}")
        seconds = time.perf_counter() - start
        last = response.json()
        if last[-1]["duplicate"] or last[-1]["index"] != n - 1:
            raise RuntimeError(f"unexpected last acknowledgement {last[-1]}")
    return Row(
        M_ACK,
        f"HTTP POST /v1/access-events, 1000/request (uvicorn, {backend})",
        n,
        seconds,
        n / seconds,
        "events/s",
    )


# --------------------------------------------------------------------------- 2. vs pymerkle


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def compare(size: int, proofs: int, workdir: Path, say: Say) -> tuple[list[Row], Path]:
    """Append ``size`` leaves and time ``proofs`` random inclusion proofs, ours beside pymerkle's.

    Returns the rows and the path of our SQLite log (reused to build the larger log of measure 3).
    """
    import pymerkle

    rows: list[Row] = []
    case = f"{size:,} leaves: "
    ours_path = workdir / f"ours-{size}.sqlite"
    log = _open_log(_sqlite_url(ours_path))
    data = [canonical_json(_leaf("cmp-", i)) for i in range(size)]  # what pymerkle is given
    say(f"  ours: appending {size:,} leaves in batches of {BATCH} …")
    ours_append = _fill_encoded(log, "cmp-", data, batch=BATCH)
    rows.append(
        Row(
            M_CMP,
            case + "append, ours (LogStore, SQLite, durable per 1000, given the encoded entries)",
            size,
            ours_append,
            size / ours_append,
            "leaves/s",
        )
    )
    our_root = log.root(size)
    # pymerkle's bulk path is one transaction: ours again with larger transactions (the batch
    # size of an import), the shape nearest to it
    big = min(BULK_BATCH, size)
    say(f"  ours: appending {size:,} leaves in batches of {big:,} …")
    bulk_log = _open_log(_sqlite_url(workdir / f"ours-{size}-bulk.sqlite"))
    ours_bulk = _fill_encoded(bulk_log, "cmp-", data, batch=big)
    if bulk_log.root(size) != our_root:
        raise RuntimeError("our two appends of the same entries disagree on the root")
    bulk_log.store.close()
    rows.append(
        Row(
            M_CMP,
            case + f"append, ours (LogStore, SQLite, durable per {big:,}, given the encoded entries)",
            size,
            ours_bulk,
            size / ours_bulk,
            "leaves/s",
        )
    )

    say("  pymerkle in memory: append_entry …")
    mem = pymerkle.InmemoryTree()
    mem_append = _timed(lambda: [mem.append_entry(d) for d in data])
    say("  pymerkle SQLite: append_entries (one transaction) …")
    pm_path = workdir / f"pymerkle-{size}.sqlite"
    bulk = pymerkle.SqliteTree(str(pm_path))
    bulk_append = _timed(lambda: bulk.append_entries(data))
    per_n = min(500, size)
    single = pymerkle.SqliteTree(str(workdir / f"pymerkle-single-{size}.sqlite"))
    single_append = _timed(lambda: [single.append_entry(d) for d in data[:per_n]])
    single.close()
    if not (mem.get_root() == bulk.get_root() == our_root):
        raise RuntimeError("pymerkle's root differs from ours for the same entries")
    for name, seconds, n in (
        ("pymerkle InmemoryTree.append_entry (not durable)", mem_append, size),
        ("pymerkle SqliteTree.append_entries (1 transaction)", bulk_append, size),
        ("pymerkle SqliteTree.append_entry (1 commit each)", single_append, per_n),
    ):
        ratio = (size / ours_append) / (n / seconds)
        note = f"ours/this {ratio:.2f}×"
        if "append_entries" in name:  # the target: against ours in the larger transactions
            bulk_ratio = (size / ours_bulk) / (n / seconds)
            note += f" (per {big:,}: {bulk_ratio:.2f}×); target ≥ 1×: {_met(bulk_ratio, 1)}"
        rows.append(Row(M_CMP, case + "append, " + name, n, seconds, n / seconds, "leaves/s", note))
    bulk.close()

    rng = random.Random(size)
    indices = [rng.randrange(size) for _ in range(proofs)]
    say(f"  {proofs:,} random inclusion proofs each …")
    fresh = _open_log(_sqlite_url(ours_path))  # a new engine and an empty node cache
    ours_single = _timed(lambda: [fresh.inclusion_proof(i, size) for i in indices])
    cache_warm = _timed(lambda: [fresh.inclusion_proof(i, size) for i in indices])
    batch_log = _open_log(_sqlite_url(ours_path))  # empty cache again, for the batched read
    ours_batched = _timed(lambda: batch_log.inclusion_proofs(indices, size))
    check = indices[: min(20, proofs)]
    for i, proof in zip(check, batch_log.inclusion_proofs(check, size), strict=True):
        if proof != fresh.inclusion_proof(i, size) or proof != log.inclusion_proof(i, size):
            raise RuntimeError(f"proof paths disagree at index {i}")
        merkle.verify_inclusion(merkle.leaf_hash(data[i]), i, size, proof, our_root)
    mem_proofs = _timed(lambda: [mem.prove_inclusion(i + 1, size) for i in indices])
    reopened = pymerkle.SqliteTree(str(pm_path))
    pm_sql_proofs = _timed(lambda: [reopened.prove_inclusion(i + 1, size) for i in indices])
    # pymerkle caches subroots too: its second pass is the fair partner of our warm one
    pm_sql_warm = _timed(lambda: [reopened.prove_inclusion(i + 1, size) for i in indices])
    reopened.close()
    fresh.store.close()
    batch_log.store.close()
    log.store.close()
    mem_rate, sql_rate = proofs / mem_proofs, proofs / pm_sql_proofs
    for name, seconds in (
        ("proofs, ours LogStore.inclusion_proof (1 call each, cold cache)", ours_single),
        ("proofs, ours LogStore.inclusion_proofs (1 node read for all)", ours_batched),
        ("proofs, ours LogStore.inclusion_proof, same indices again (warm cache)", cache_warm),
    ):
        rate = proofs / seconds
        note = f"{rate / mem_rate:.2f}× pymerkle mem, {rate / sql_rate:.1f}× pymerkle SQLite"
        # Every row gets the verdict: cold (a node read per proof), batched, warm (the nodes in
        # memory, like pymerkle's in-memory tree) — none is singled out.
        note += f"; target ≥ 10× / ≥ 1000×: {_met(rate / mem_rate, 10)} / {_met(rate / sql_rate, 1000)}"
        if "warm" in name:
            note += f"; {rate / (proofs / pm_sql_warm):.1f}× pymerkle SQLite's own second pass"
        rows.append(Row(M_CMP, case + name, proofs, seconds, rate, "proofs/s", note))
    rows.append(
        Row(
            M_CMP,
            case + "proofs, pymerkle InmemoryTree.prove_inclusion",
            proofs,
            mem_proofs,
            mem_rate,
            "proofs/s",
        )
    )
    rows.append(
        Row(
            M_CMP,
            case + "proofs, pymerkle SqliteTree.prove_inclusion",
            proofs,
            pm_sql_proofs,
            sql_rate,
            "proofs/s",
        )
    )
    rows.append(
        Row(
            M_CMP,
            case + "proofs, pymerkle SqliteTree.prove_inclusion, same indices again (its cache warm)",
            proofs,
            pm_sql_warm,
            proofs / pm_sql_warm,
            "proofs/s",
        )
    )
    rows.extend(tile_rows(ours_path, size, case))
    return rows, ours_path


def tile_rows(path: Path, size: int, case: str) -> list[Row]:
    """Every C2SP tlog tile of the log (what a mirror fetches to hold the whole tree), read by
    ``LogStore.tlog_tile`` (one key range each) beside the same hashes by primary key
    (``LogStore.nodes``: one ``IN`` list of up to 256 keys a tile), each from a fresh store."""
    tiles = tlog_tiles(size)
    ranged = _open_log(_sqlite_url(path))
    by_range = _timed(lambda: [ranged.tlog_tile(level, n, w) for level, n, w in tiles])
    keyed = _open_log(_sqlite_url(path))
    wanted = [[(8 * level, (n << 8) + i) for i in range(w)] for level, n, w in tiles]
    by_key = _timed(lambda: [keyed.nodes(ids) for ids in wanted])
    for (level, n, w), ids in list(zip(tiles, wanted, strict=True))[:: max(1, len(tiles) // 20)]:
        found = keyed.nodes(ids)
        if ranged.tlog_tile(level, n, w) != b"".join(found[i] for i in ids):
            raise RuntimeError(f"tile {level}/{n} differs from its nodes")
    ranged.store.close()
    keyed.store.close()
    hashes = sum(w for _, _, w in tiles)
    note = f"{hashes * 32 / by_range / 1e6:.0f} MB/s of hashes; {by_key / by_range:.1f}× the keyed reads"
    # what `sharetrail monitor` does with them (less HTTP): every tile against the tile above and
    # the root; beside the naive audit, each leaf by its own inclusion proof (a sample)
    checker = _open_log(_sqlite_url(path))

    def fetch(tile: str) -> bytes:
        _, _, level, rest = tile.split("/", 3)  # /tile/<L>/<N>[.p/<W>]
        index, width = layout.parse_tlog_tile_path(rest)
        return checker.tlog_tile(int(level), index, width or layout.TILE_WIDTH)

    root = checker.root(size)

    def check_tiles() -> None:
        tree = TileTree(fetch, size)
        tree.check()
        if tree.mth(size) != root:
            raise RuntimeError("the tiles do not give the root")

    checked = _timed(check_tiles)
    sample = random.Random(size).sample(range(size), min(size, 2000))

    def each_by_proof() -> None:
        for i in sample:
            leaf, proof = checker.leaf_and_inclusion_proof(i, size)
            merkle.verify_inclusion(leaf, i, size, proof, root)

    naive = _timed(each_by_proof)
    checker.store.close()
    naive_rate = len(sample) / naive
    return [
        Row(M_CMP, case + f"tlog tiles: all {len(tiles):,}, LogStore.tlog_tile", len(tiles), by_range,
            len(tiles) / by_range, "tiles/s", note),
        Row(M_CMP, case + "tlog tiles: the same hashes by key (LogStore.nodes, ≤ 256 a query)", len(tiles),
            by_key, len(tiles) / by_key, "tiles/s"),
        Row(M_CMP, case + "monitor: every tile checked against the tile above and the root (no HTTP)", size,
            checked, size / checked, "leaves/s", f"{size / checked / naive_rate:.0f}× the naive audit"),
        Row(M_CMP, case + "monitor, naive: each leaf by its own inclusion proof (sampled)", len(sample),
            naive, naive_rate, "leaves/s"),
    ]  # fmt: skip


# --------------------------------------------------------------------------- 3. latency at size


def proof_latency(path: Path, size: int, samples: int, say: Say) -> list[Row]:
    """Single ``LogStore.inclusion_proof`` calls, each timed, on a log of ``size`` leaves."""
    log = _open_log(_sqlite_url(path))
    rows: list[Row] = []
    try:
        have = log.size()
        if have < size:
            say(f"  building the log from {have:,} to {size:,} leaves (batches of {BUILD_BATCH:,}) …")
            seconds = _fill(log, "cmp-", size, say)
            rows.append(
                Row(
                    M_LAT,
                    f"build: append {have:,} → {size:,}",
                    size - have,
                    seconds,
                    (size - have) / seconds,
                    "leaves/s",
                )
            )
        log.store.close()
        log = _open_log(_sqlite_url(path))
        rng = random.Random(size)
        latencies: list[float] = []
        for _ in range(samples):
            index = rng.randrange(size)
            start = time.perf_counter()
            log.inclusion_proof(index, size)
            latencies.append(time.perf_counter() - start)
    finally:
        log.store.close()
    total = sum(latencies)
    p50 = statistics.median(latencies) * 1000
    p99 = statistics.quantiles(latencies, n=100)[98] * 1000
    case = f"{size:,} leaves: LogStore.inclusion_proof"
    rows.append(Row(M_LAT, case + " p50", samples, total, p50, "ms"))
    rows.append(Row(M_LAT, case + " p99", samples, total, p99, "ms", f"max {max(latencies) * 1000:.2f} ms"))
    return rows


# --------------------------------------------------------------------------- 4. ack → anchored


def ack_to_anchored(ledger: Ledger, sizes: Sizes, say: Say) -> list[Row]:
    """Record ``anchor_rate`` events/s through the real service with the anchoring loop running.

    Each batch's acknowledgement time is when ``record_gateway_events`` returned; its anchor time
    is when the first checkpoint covering its last leaf was recorded (``Anchorer.on_anchor``, called
    right after the checkpoint row commits). Latency = anchor time − acknowledgement time.
    """
    registrar = ledger.parties.get(ledger.bootstrap.registrar_id)
    operator, _ = ledger.parties.register(
        registrar, NewParty(PartyKind.OPERATOR, "bench operator", make_uscc(8001))
    )
    department, _ = ledger.parties.register(
        registrar, NewParty(PartyKind.DEPARTMENT, "bench department", make_uscc(8002))
    )
    resource = bench_resource(ledger, department)
    per = sizes.anchor_batch
    n_batches = max(1, round(sizes.anchor_seconds * sizes.anchor_rate / per))
    when = datetime.now(UTC) - timedelta(minutes=1)
    batches = [
        [
            AccessEvent(
                event_id=f"anchor-{b}-{i}",
                accessor=department.id,
                resource=resource,
                purpose=BENCH_PURPOSE,
                fields=list(_BENCH_FIELDS),
                record_count=1,
                time=when,
                gateway="bench-gateway-1",
            )
            for i in range(per)
        ]
        for b in range(n_batches)
    ]
    anchored: list[tuple[int, float]] = []
    previous = ledger.anchorer.on_anchor

    def on_anchor(checkpoint: Checkpoint) -> None:
        anchored.append((checkpoint.size, time.perf_counter()))
        if previous is not None:
            previous(checkpoint)

    ledger.anchorer.on_anchor = on_anchor
    acks: list[tuple[int, float]] = []  # (last index of the batch, ack time)
    period = per / sizes.anchor_rate
    ledger.anchorer.start()
    try:
        start = time.perf_counter()
        for b, events in enumerate(batches):
            delay = start + b * period - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            results = ledger.log.record_gateway_events(operator, events)
            acks.append((max(r.index for r in results), time.perf_counter()))
        sent_seconds = time.perf_counter() - start
        last_index = acks[-1][0]
        deadline = time.monotonic() + 60
        while not anchored or anchored[-1][0] <= last_index:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no checkpoint covered index {last_index} within 60 s")
            time.sleep(0.01)
    finally:
        ledger.anchorer.stop()
        ledger.anchorer.on_anchor = previous
    latencies: list[float] = []
    for index, acked in acks:
        covered = next(t for size, t in anchored if size > index)
        latencies.extend([covered - acked] * per)
    n = len(latencies)
    p50 = statistics.median(latencies)
    p99 = statistics.quantiles(latencies, n=100)[98] if n >= 2 else latencies[0]
    rate = n / sent_seconds
    interval = ledger.settings.anchor_interval
    case = f"record_gateway_events {per}/batch at {rate:,.0f} events/s, anchor_interval {interval:g} s"
    return [
        Row(M_ANCHOR, case + ": p50", n, sent_seconds, p50, "s", f"{len(anchored)} anchors"),
        Row(
            M_ANCHOR,
            case + ": p99",
            n,
            sent_seconds,
            p99,
            "s",
            f"max {max(latencies):.2f} s; target ≤ 2 s: {_met(p99, 2.0, at_most=True)}",
        ),
    ]


# --------------------------------------------------------------------------- 5. verify


def _stored_checkpoints(ledger: Ledger) -> list[Checkpoint]:
    with ledger.store.read() as session:
        return list(session.scalars(select(Checkpoint)))


def verify_rate(ledger: Ledger, events: int, say: Say) -> list[Row]:
    """The full audit, and beside it its first step alone: reading the ``Anchored`` events from
    the chain (``chain_checkpoints``, the blocks named by the stored checkpoints), which does not grow
    with the log."""
    log = ledger.log.log
    say(f"  filling the ledger's log to {events:,} events and anchoring …")
    _fill(log, "verify-", events, say)
    ledger.anchorer.anchor_once()
    anchor = ledger.contracts["Anchor"]
    start = time.perf_counter()
    report = verify(ledger.store, ledger.chain, anchor)
    seconds = time.perf_counter() - start
    if not report.intact or report.anchored_size != report.entries:
        raise RuntimeError(f"verify did not pass on an untouched log: {report.as_dict()}")
    hints = [c.block_number for c in _stored_checkpoints(ledger)]
    start = time.perf_counter()
    chain_checkpoints(ledger.chain, anchor, hints)
    chain_seconds = time.perf_counter() - start
    rate = report.entries / seconds
    store_rate = report.entries / max(seconds - chain_seconds, 1e-9)
    blocks = ledger.chain.block_number()
    case = f"verify (SQLite): {report.entries:,} entries, {report.checkpoints} checkpoints"
    return [
        Row(
            M_VERIFY,
            case,
            report.entries,
            seconds,
            rate,
            "events/s",
            f"target ≥ 100,000/s: {_met(rate, 100_000)}",
        ),
        Row(
            M_VERIFY,
            f"  of which chain_checkpoints (eth_getLogs of the anchor blocks; chain has {blocks:,} blocks)",
            report.checkpoints,
            chain_seconds,
            chain_seconds * 1000,
            "ms",
            f"the rest: {store_rate:,.0f} events/s",
        ),
    ]


# --------------------------------------------------------------------------- the run


def run_log_bench(
    sizes: Sizes,
    *,
    postgres: bool = True,
    http_app_factory: str | None = None,
    progress: Say | None = None,
) -> LogBenchResult:
    """All five measures; ``http_app_factory`` (e.g. ``"api.app:create_app"``) enables the HTTP case."""
    say = progress or (lambda _msg: None)
    result = LogBenchResult()
    with tempfile.TemporaryDirectory(prefix="sharetrail-bench-log-") as tmp:
        workdir = Path(tmp)
        say(f"1. LogStore.append, SQLite, {sizes.ack_events:,} events …")
        sqlite_row = ack_rate(
            _sqlite_url(workdir / "ack.sqlite"),
            sizes.ack_events,
            "in-process LogStore.append, 1000/batch, SQLite",
        )
        ack_rows = [sqlite_row]
        if postgres:
            from ledger.bench._pg import PgServer, PgUnavailable

            try:
                with PgServer() as url:
                    say(f"1. LogStore.append, PostgreSQL (fsync on), {sizes.ack_events:,} events …")
                    ack_rows.append(
                        ack_rate(url, sizes.ack_events, "in-process LogStore.append, 1000/batch, PostgreSQL")
                    )
            except PgUnavailable as exc:
                result.skipped.append(f"PostgreSQL: {exc}")
        if http_app_factory is not None:
            say(f"1. HTTP batch API, {sizes.http_events:,} events …")
            ack_rows.append(http_rate(http_app_factory, sizes.http_events, workdir, say))
        settings = Settings(
            data_dir=workdir / "ledger",
            bootstrap_token=BOOTSTRAP_TOKEN,
            anchor_interval=1.0,
            anchor_loop=False,
        )
        with Ledger.open(settings) as ledger:
            say(f"1. naive: {sizes.naive_events} recordLeaf transactions …")
            naive = naive_rate(ledger, sizes.naive_events)
            say(f"4. ack → anchored, {sizes.anchor_rate:,} events/s for {sizes.anchor_seconds:g} s …")
            anchor_rows = ack_to_anchored(ledger, sizes, say)
            say(f"5. verify over {sizes.verify_events:,} events …")
            verify_rows = verify_rate(ledger, sizes.verify_events, say)
            registrar = ledger.parties.get(ledger.bootstrap.registrar_id)
            _, regulator_token = ledger.parties.register(
                registrar, NewParty(PartyKind.REGULATOR, "bench regulator", make_uscc(8003))
            )
        if http_app_factory is not None:
            say("5. sharetrail monitor over HTTP on the same log …")
            verify_rows += monitor_rows(http_app_factory, settings.data_dir, regulator_token, workdir)
        for row in ack_rows:
            target = 20_000 if "SQLite" in row.case and "HTTP" not in row.case else 5_000
            ratio = row.value / naive.value
            note = f"{ratio:,.0f}× naive"
            if "HTTP" not in row.case:
                note += f"; target ≥ {target:,}/s: {_met(row.value, target)}"
            if target == 20_000:
                note += f"; ≥ 500× naive: {_met(ratio, 500)}"
            result.rows.append(Row(row.measure, row.case, row.n, row.seconds, row.value, row.unit, note))
        result.rows.append(naive)
        ours_path: Path | None = None
        for size in sizes.compare:
            say(f"2. vs pymerkle at {size:,} leaves …")
            rows, ours_path = compare(size, sizes.proofs, workdir, say)
            result.rows.extend(rows)
            gc.collect()  # pymerkle's in-memory tree of this size
        path = (
            ours_path
            if ours_path is not None and max(sizes.compare) <= sizes.proof_leaves
            else workdir / "latency.sqlite"
        )
        say(f"3. inclusion proof latency at {sizes.proof_leaves:,} leaves …")
        result.rows.extend(proof_latency(path, sizes.proof_leaves, sizes.latency_samples, say))
        result.rows.extend(anchor_rows)
        result.rows.extend(verify_rows)
    return result


def monitor_rows(app_factory: str, data_dir: Path, token: str, workdir: Path) -> list[Row]:
    """``sharetrail monitor`` (``ledger.log.monitor.monitor``) against uvicorn serving the log of
    measure 5, its chain at ``/rpc``: one tile request at a time, eight, and eight with every
    entry checked too."""
    from ledger.bench.load import serve_uvicorn
    from ledger.log.monitor import monitor

    env = {
        **os.environ,
        "SHARETRAIL_DATA_DIR": str(data_dir),
        "SHARETRAIL_BOOTSTRAP_TOKEN": BOOTSTRAP_TOKEN,
        "SHARETRAIL_ANCHOR_LOOP": "false",
    }
    env.pop("SHARETRAIL_DB_URL", None)
    rows = []
    with serve_uvicorn(app_factory, env, workdir / "uvicorn-monitor.log") as base:
        for workers, entries in ((1, False), (8, False), (8, True)):
            began = time.perf_counter()
            report = monitor(base, token, base + "/rpc", workers=workers, entries=entries)
            seconds = time.perf_counter() - began
            what = "tiles and entries" if entries else "tiles"
            rows.append(
                Row(
                    M_VERIFY,
                    f"sharetrail monitor over HTTP, {what}, {workers} request(s) in flight",
                    report.size,
                    seconds,
                    report.size / seconds,
                    "events/s",
                    f"{report.tiles:,} tiles" + (f", {report.entries:,} entries" if entries else ""),
                )
            )
    return rows


def render(result: LogBenchResult) -> Table:
    table = Table(title="Log: acknowledgement, proofs, anchoring, verify")
    for name in ("measure", "case", "n", "seconds", "value", "unit", "note"):
        table.add_column(name, justify="right" if name in ("n", "seconds", "value") else "left")
    for row in result.rows:
        value = f"{row.value:,.0f}" if row.value >= 100 else f"{row.value:.3g}"
        table.add_row(row.measure, row.case, f"{row.n:,}", f"{row.seconds:.2f}", value, row.unit, row.note)
    for reason in result.skipped:
        table.add_row("skipped", reason, "", "", "", "", "")
    return table
