"""What the fault tests share: a real ``sharetrail serve`` process, and an operator that ingests
batches through ``POST /v1/access-events`` and remembers exactly what was acknowledged.

The server is the installed console script (``sharetrail serve``, the same ``api.cli:main`` an
operator runs) in its own process, so ``kill -9`` kills what production would run. Its output is
drained by a thread and kept for failure messages. Nothing here sleeps as an assertion: every wait
polls with a generous deadline (the machine is shared).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from ledger.identity.uscc import make_uscc
from ledger.log.events import AccessEvent
from tests.support.live import free_port
from tests.support.world import resource_body

BOOT = "st_fault-registrar-token"
START_TIMEOUT = 120.0
BATCH = 50
RESOURCE_CODE = "GY-TJ-001"  # published by the operator's department (Operator.register)
MAX_ENTRIES_PAGE = 1000  # GET /v1/log/entries returns at most this many


def cli_command() -> list[str]:
    """The ``sharetrail`` console script next to this interpreter, else the same entry point by module."""
    script = Path(sys.executable).with_name("sharetrail")
    if script.exists():
        return [str(script)]
    found = shutil.which("sharetrail")
    return [found] if found else [sys.executable, "-m", "api.cli"]


class ServerProcess:
    """One ``sharetrail serve`` on a free loopback port, over ``data_dir``; restartable.

    ``env`` adds ``SHARETRAIL_*`` settings to the inherited environment (any inherited
    ``SHARETRAIL_*`` is dropped so the test's own settings are the only ones)."""

    def __init__(self, data_dir: Path, env: Mapping[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        base = {k: v for k, v in os.environ.items() if not k.startswith("SHARETRAIL_")}
        self.env = {
            **base,
            "SHARETRAIL_DATA_DIR": str(data_dir),
            "SHARETRAIL_BOOTSTRAP_TOKEN": BOOT,
            **(env or {}),
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.output: deque[str] = deque(maxlen=200)
        self._drain: threading.Thread | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def tail(self) -> str:
        return "\n".join(self.output)

    def start(self, timeout: float = START_TIMEOUT) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        cmd = [*cli_command(), "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        proc = self.proc

        def drain() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                self.output.append(line.decode("utf-8", "replace").rstrip())

        self._drain = threading.Thread(target=drain, daemon=True)
        self._drain.start()
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if proc.poll() is not None:
                raise AssertionError(f"sharetrail serve exited {proc.returncode}:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"sharetrail serve not healthy after {timeout:g} s:\n{self.tail()}")
            time.sleep(0.1)

    def kill9(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed or closed."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        assert self.proc.wait(timeout=60) == -signal.SIGKILL
        self._join_drain()

    def stop(self) -> None:
        """SIGTERM (uvicorn's graceful shutdown), then SIGKILL if it hangs."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._join_drain()

    def _join_drain(self) -> None:
        if self._drain is not None:
            self._drain.join(timeout=10)
            self._drain = None
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_for(
    condition: Callable[[], bool], timeout: float, message: Callable[[], str], step: float = 0.1
) -> float:
    """Poll ``condition`` until true; return the seconds it took; fail with ``message()`` at the deadline."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(message())
        time.sleep(step)
    return time.monotonic() - start


@dataclass
class Batch:
    """One ``POST /v1/access-events`` body and what became of it."""

    events: list[dict[str, Any]]
    status: int | None = None  # None: no answer (connection cut, timeout)
    body: Any = None
    done_at: float = 0.0  # time.monotonic() when the answer (or the failure) came

    @property
    def ids(self) -> list[str]:
        return [e["event_id"] for e in self.events]

    @property
    def acknowledged(self) -> bool:
        return self.status == 201


@dataclass
class Operator:
    """The platform operator of one server: registers itself and a department, then ingests."""

    url: str
    operator_id: str
    token: str
    department_id: str
    department_token: str
    batches: list[Batch] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _seq: int = 0

    @classmethod
    def register(cls, url: str, seq: int = 600) -> Operator:
        registrar = {"Authorization": f"Bearer {BOOT}"}
        made: dict[str, dict[str, Any]] = {}
        # the publisher is a department of its own: the accessor's token stays unused until a test
        # uses it (the chain outage test needs a party whose on-chain status was never read)
        for offset, (role, kind) in enumerate(
            (("operator", "operator"), ("department", "department"), ("publisher", "department"))
        ):
            r = httpx.post(
                f"{url}/v1/parties",
                json={"kind": kind, "name": f"fault {role}", "uscc": make_uscc(seq + offset)},
                headers=registrar,
                timeout=120,
            )
            assert r.status_code == 201, r.text
            made[role] = r.json()
        operator, department = made["operator"], made["department"]
        # the catalog entry the events name: an exchange platform may report real resources only
        r = httpx.post(
            f"{url}/v1/resources",
            json=resource_body(RESOURCE_CODE, share_type="unconditional", level=1),
            headers={"Authorization": f"Bearer {made['publisher']['token']}"},
            timeout=120,
        )
        # a second operator of the same server finds it there, provided by the first one's publisher
        assert r.status_code == 201 or r.json()["error"]["code"] == "resource_code_taken", r.text
        return cls(url, operator["id"], operator["token"], department["id"], department["token"])

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def new_batch(self, prefix: str, size: int = BATCH) -> Batch:
        with self._lock:
            start, self._seq = self._seq, self._seq + size
        when = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
        events = [
            {
                "event_id": f"{prefix}-{n}",
                "accessor": self.department_id,
                "resource": RESOURCE_CODE,
                "purpose": "statistics",
                "fields": ["district", "population"],
                "mode": "aggregate",
                "record_count": n % 97,
                "time": when,
                "gateway": "fault-gateway",
            }
            for n in range(start, start + size)
        ]
        return Batch(events)

    def post(self, client: httpx.Client, batch: Batch) -> Batch:
        """Send once. A transport error leaves ``status`` None: the outcome is unknown to the client."""
        try:
            r = client.post(f"{self.url}/v1/access-events", json=batch.events, headers=self.headers)
        except httpx.TransportError:
            batch.status, batch.body = None, None
        else:
            batch.status = r.status_code
            batch.body = r.json()
        batch.done_at = time.monotonic()
        with self._lock:
            self.batches.append(batch)
        return batch

    def expected_entry(self, event: dict[str, Any]) -> dict[str, Any]:
        """The log entry an acknowledged event must have become (``AccessEvent.leaf``)."""
        return AccessEvent.model_validate(event).leaf(recorded_by=self.operator_id)


def read_log(url: str, headers: Mapping[str, str]) -> list[dict[str, Any]]:
    """Every log entry, in index order, through ``GET /v1/log/entries`` (pages of 1000)."""
    with httpx.Client(base_url=url, headers=dict(headers), timeout=120) as client:
        size = int(client.get("/v1/log/checkpoint").json()["log_size"])
        entries: list[dict[str, Any]] = []
        for start in range(0, size, MAX_ENTRIES_PAGE):
            r = client.get("/v1/log/entries", params={"start": start, "end": min(size, start + 1000)})
            assert r.status_code == 200, r.text
            entries.extend(r.json())
    return entries


def checkpoint(url: str, headers: Mapping[str, str]) -> dict[str, Any]:
    r = httpx.get(f"{url}/v1/log/checkpoint", headers=dict(headers), timeout=60)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def wait_anchored(url: str, headers: Mapping[str, str], size: int, timeout: float = 60) -> float:
    """Wait until a checkpoint of at least ``size`` leaves is anchored; return how long it took."""
    last: dict[str, Any] = {}

    def done() -> bool:
        nonlocal last
        last = checkpoint(url, headers)
        return int(last["tree_size"]) >= size

    return wait_for(done, timeout, lambda: f"size {size} not anchored within {timeout:g} s: {last}")


def check_log(operator: Operator, entries: list[dict[str, Any]]) -> None:
    """The log is gap-free, holds each event id once, and every acknowledged event at the index the
    server answered, with exactly the content sent."""
    assert [e["index"] for e in entries] == list(range(len(entries))), "the sequence has a gap"
    ids = [e["event_id"] for e in entries]
    assert len(set(ids)) == len(ids), "an event id appears twice in the log"
    by_id = {e["event_id"]: e for e in entries}
    for batch in operator.batches:
        if not batch.acknowledged:
            continue
        for event, answer in zip(batch.events, batch.body, strict=True):
            assert answer["event_id"] == event["event_id"]
            stored = by_id.get(event["event_id"])
            assert stored is not None, f"acknowledged event {event['event_id']} is missing"
            assert stored["index"] == answer["index"]
            assert stored["entry"] == operator.expected_entry(event)


def verify_over_http(url: str) -> dict[str, Any]:
    """The server's full integrity audit (``POST /v1/audit/verify``, the registrar may run it)."""
    r = httpx.post(f"{url}/v1/audit/verify", headers={"Authorization": f"Bearer {BOOT}"}, timeout=300)
    assert r.status_code == 200, r.text
    report: dict[str, Any] = r.json()
    return report


def cli_verify(env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """``sharetrail verify`` on a stopped server's data directory."""
    return subprocess.run(
        [*cli_command(), "verify"],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def anchored_sizes(rpc_url: str, anchor: str) -> list[int]:
    """``treeSize`` of every ``Anchored`` event of the anchor contract, in chain order."""
    from web3 import Web3

    from ledger.chain.contracts import load_artifact

    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 30}))
    contract = w3.eth.contract(address=Web3.to_checksum_address(anchor), abi=load_artifact("Anchor")["abi"])
    logs = contract.events.Anchored().get_logs(from_block=0)
    ordered = sorted(logs, key=lambda e: (int(e["blockNumber"]), int(e["logIndex"])))
    return [int(e["args"]["treeSize"]) for e in ordered]


def iter_json_lines(text: str) -> Iterator[Any]:
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            yield json.loads(line)
