"""API throughput and latency under concurrency: an async load generator against uvicorn workers.

**The server**: ``uvicorn --factory <app factory> --workers N`` in its own process group, on an
external chain (a throw-away Hardhat node: the embedded chain is one process's by construction) and
a database shared by the workers (SQLite in WAL mode, or PostgreSQL); the anchoring loop runs (one
leader among the workers) as in production. Before it starts, the ledger is prepared in-process
once (migrations, contracts, an operator) and ``seed_events`` events are recorded and anchored, so
proofs have a tree to come from.

**The load**: ``concurrency`` closed-loop clients on one ``httpx.AsyncClient`` (keep-alive, one
connection each), each sending its next request as soon as the previous one is answered, with the
operator's token, a weighted mix of ``GET /v1/log/checkpoint``, ``GET /v1/log/proof/inclusion`` at a
random index of the anchored tree, and ``POST /v1/access-events`` of ``post_batch`` new events. The
first ``warmup`` seconds are not counted; throughput is the requests *started* in the next
``seconds`` over ``seconds``; latency is from send to the full response. The generator runs on the
same machine as the server (say so beside the figures: on a 2-core machine it takes a share of the
CPU the workers would otherwise have).

**Beside it**: the same mix against one worker — what the second worker buys.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ledger.bench.log import BENCH_RESOURCE_CODE, bench_resource
from ledger.identity.parties import NewParty
from ledger.identity.uscc import make_uscc
from ledger.log.events import AccessEvent
from ledger.runtime import Ledger
from ledger.settings import Settings
from ledger.types import PartyKind

Say = Callable[[str], None]
BOOTSTRAP_TOKEN = "st_bench-load-registrar-token"
OPS = ("checkpoint", "proof", "ingest")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def serve_uvicorn(
    app_factory: str, env: Mapping[str, str], log_path: Path, *, workers: int = 1, timeout: float = 120
) -> Iterator[str]:
    """``uvicorn --factory app_factory`` on a free loopback port until the block ends; yields its
    base URL once ``/healthz`` answers 200. ``env`` is the whole environment of the server (the
    ``SHARETRAIL_*`` settings); the package root is put on its ``PYTHONPATH``. ``ledger`` does not
    import ``api``: the caller hands the factory's import string in."""
    import httpx

    port = free_port()
    root = str(Path(__file__).resolve().parents[2])
    full_env = {**env, "PYTHONPATH": os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)}
    cmd = [sys.executable, "-m", "uvicorn", "--factory", app_factory, "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--log-level", "warning", "--no-access-log", "--workers", str(workers)]
    with log_path.open("ab") as server_log:
        proc = subprocess.Popen(
            cmd, env=full_env, cwd=root, stdout=server_log, stderr=subprocess.STDOUT, start_new_session=True
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"uvicorn exited {proc.returncode}: {log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{base}/healthz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not become healthy within {timeout:g} s")
            time.sleep(0.2)
        yield base
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # the master and its workers
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


# --------------------------------------------------------------------------- sizes and results


@dataclass(frozen=True)
class LoadSizes:
    seconds: float = 20.0
    warmup: float = 3.0
    concurrency: int = 32
    seed_events: int = 10_000
    post_batch: int = 10
    mix: tuple[int, int, int] = (45, 45, 10)  # weights of OPS
    workers: tuple[int, ...] = (1, 2)

    @classmethod
    def quick(cls) -> LoadSizes:
        return cls(seconds=1.5, warmup=0.5, concurrency=8, seed_events=300)


@dataclass(frozen=True)
class OpStats:
    n: int
    p50: float  # ms
    p99: float  # ms


@dataclass
class LoadResult:
    backend: str
    workers: int
    concurrency: int
    seconds: float
    requests: int
    events: int  # ingested by the POSTs counted
    p50: float  # ms, all requests
    p99: float
    ops: dict[str, OpStats] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)  # "op status" -> count

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def label(self) -> str:
        return f"{self.workers} worker{'s' if self.workers > 1 else ''}, {self.backend}"


def _stats(values: list[float]) -> OpStats:
    return OpStats(len(values), statistics.median(values) if values else 0.0, _p(values, 99))


def _p(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100)[q - 1]


# --------------------------------------------------------------------------- preparation


@dataclass(frozen=True)
class Prepared:
    token: str
    accessor: str
    tree_size: int


def prepare(settings: Settings, seed_events: int) -> Prepared:
    """Open the ledger once (migrations, contracts), register an operator and a department, record
    ``seed_events`` events and anchor them."""
    with Ledger.open(settings) as ledger:
        registrar = ledger.parties.get(ledger.bootstrap.registrar_id)
        operator, token = ledger.parties.register(
            registrar, NewParty(PartyKind.OPERATOR, "load operator", make_uscc(7101))
        )
        department, _ = ledger.parties.register(
            registrar, NewParty(PartyKind.DEPARTMENT, "load department", make_uscc(7102))
        )
        bench_resource(ledger, department)  # the events name a published catalog entry
        when = datetime.now(UTC) - timedelta(minutes=1)
        for start in range(0, seed_events, 1000):
            ledger.log.record_gateway_events(
                operator,
                [
                    AccessEvent.model_validate(_event(f"seed-{i}", department.id, when))
                    for i in range(start, min(seed_events, start + 1000))
                ],
            )
        checkpoint = ledger.anchorer.anchor_once()
        if checkpoint is None:
            raise RuntimeError("nothing anchored after seeding")
        return Prepared(token=token, accessor=department.id, tree_size=checkpoint.size)


def _event(event_id: str, accessor: str, when: datetime) -> dict[str, object]:
    return {
        "event_id": event_id,
        "accessor": accessor,
        "resource": BENCH_RESOURCE_CODE,
        "purpose": "statistics",
        "fields": ["district", "population"],
        "mode": "aggregate",
        "record_count": 1,
        "time": when.isoformat(),
        "gateway": "bench-load",
    }


# --------------------------------------------------------------------------- the generator


class _Connection:
    """One keep-alive HTTP/1.1 connection on asyncio streams: a request written by hand, the
    response read by ``Content-Length`` (or chunks). The load generator's client.

    Why not httpx: on this 2-core machine ``httpx.AsyncClient`` spent ~3 ms of CPU a request — the
    generator, not the server, was the bound (one core at 98 %, the uvicorn worker at 42 %;
    docs/benchmarks.md, "API: the request path"). This costs a small fraction of that, so the
    figures are the server's."""

    def __init__(self, host: str, port: int, headers: Mapping[str, str]) -> None:
        self.host, self.port = host, port
        self.head = "".join(f"{k}: {v}\r\n" for k, v in {"Host": f"{host}:{port}", **headers}.items())
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, target: str, body: bytes = b"") -> tuple[int, bytes]:
        """``(status, body)``; reconnects once if the server had closed the idle connection."""
        for attempt in (1, 2):
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            assert self.reader is not None
            length = f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n" if body else ""
            self.writer.write(f"{method} {target} HTTP/1.1\r\n{self.head}{length}\r\n".encode() + body)
            try:
                await self.writer.drain()
                return await self._response(self.reader)
            except (ConnectionError, asyncio.IncompleteReadError):
                await self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _response(self, reader: asyncio.StreamReader) -> tuple[int, bytes]:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        fields = {
            k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)
        }
        if fields.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                parts.append(await reader.readexactly(size + 2))
            await reader.readuntil(b"\r\n")  # the empty trailer
            body = b"".join(part[:-2] for part in parts)
        else:
            body = await reader.readexactly(int(fields.get("content-length", "0")))
        if fields.get("connection", "").lower() == "close":
            await self.close()
        return status, body

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(ConnectionError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


async def generate(base: str, prepared: Prepared, sizes: LoadSizes, run: str, seed: int) -> LoadResult:
    """Drive the mix; return the counts and latencies of the measured window."""
    rng = random.Random(seed)
    url = urlsplit(base)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    headers = {"Authorization": f"Bearer {prepared.token}"}
    latencies: dict[str, list[float]] = {op: [] for op in OPS}
    errors: Counter[str] = Counter()
    events = 0
    when = datetime.now(UTC) - timedelta(minutes=1)
    started = time.perf_counter()
    measure_from = started + sizes.warmup
    end = measure_from + sizes.seconds

    async def user(u: int) -> None:
        nonlocal events
        seq = 0
        connection = _Connection(host, port, headers)
        try:
            while (sent := time.perf_counter()) < end:
                op = rng.choices(OPS, weights=sizes.mix)[0]
                if op == "checkpoint":
                    status, _ = await connection.request("GET", "/v1/log/checkpoint")
                elif op == "proof":
                    index = rng.randrange(prepared.tree_size)
                    target = f"/v1/log/proof/inclusion?index={index}&tree_size={prepared.tree_size}"
                    status, _ = await connection.request("GET", target)
                else:
                    ids = [f"{run}-{u}-{seq}-{k}" for k in range(sizes.post_batch)]
                    body = [_event(event_id, prepared.accessor, when) for event_id in ids]
                    seq += 1
                    status, _ = await connection.request(
                        "POST", "/v1/access-events", json.dumps(body).encode()
                    )
                took = (time.perf_counter() - sent) * 1000
                if sent < measure_from:
                    continue
                latencies[op].append(took)
                if status >= 400:
                    errors[f"{op} {status}"] += 1
                elif op == "ingest":
                    events += sizes.post_batch
        finally:
            await connection.close()

    await asyncio.gather(*(user(u) for u in range(sizes.concurrency)))

    every = [t for op in OPS for t in latencies[op]]
    return LoadResult(
        backend="",
        workers=0,
        concurrency=sizes.concurrency,
        seconds=sizes.seconds,
        requests=len(every),
        events=events,
        p50=statistics.median(every) if every else 0.0,
        p99=_p(every, 99),
        ops={op: _stats(v) for op, v in latencies.items()},
        errors=dict(errors),
    )


# --------------------------------------------------------------------------- the run


def _run_async(coro: Coroutine[Any, Any, LoadResult]) -> LoadResult:
    """``asyncio.run`` in a thread of its own: the caller's thread may already run an event loop
    (a notebook, a test session with a browser driver), where ``asyncio.run`` refuses to start."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def run_load_bench(
    sizes: LoadSizes,
    *,
    app_factory: str,
    chain_url: str,
    backends: Mapping[str, str | None],
    progress: Say | None = None,
) -> list[LoadResult]:
    """For each backend (name → database URL, ``None`` for SQLite in the data directory) and each
    worker count, the mix against ``uvicorn --workers N`` on ``chain_url``."""
    say = progress or (lambda _msg: None)
    results: list[LoadResult] = []
    with tempfile.TemporaryDirectory(prefix="sharetrail-bench-load-") as tmp:
        for backend, db_url in backends.items():
            data_dir = Path(tmp) / backend
            settings = Settings(
                data_dir=data_dir,
                db_url=db_url,
                chain=chain_url,
                bootstrap_token=BOOTSTRAP_TOKEN,
                anchor_loop=False,
            )
            say(f"  load, {backend}: preparing (contracts, {sizes.seed_events:,} events anchored) …")
            prepared = prepare(settings, sizes.seed_events)
            env = {k: v for k, v in os.environ.items() if not k.startswith("SHARETRAIL_")}
            env |= {"SHARETRAIL_DATA_DIR": str(data_dir), "SHARETRAIL_CHAIN": chain_url}
            if db_url is not None:
                env["SHARETRAIL_DB_URL"] = db_url
            for workers in sizes.workers:
                clients = f"{sizes.concurrency} clients for {sizes.seconds:g} s"
                say(f"  load, {backend}, {workers} worker(s): {clients} …")
                log_path = Path(tmp) / f"uvicorn-{backend}-{workers}.log"
                with serve_uvicorn(app_factory, env, log_path, workers=workers) as base:
                    run = f"load-{backend}-{workers}"
                    result = _run_async(generate(base, prepared, sizes, run, seed=workers))
                result.backend, result.workers = backend, workers
                results.append(result)
    return results
