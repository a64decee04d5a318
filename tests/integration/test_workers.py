"""Several uvicorn workers on one ledger (issue 8, scale path): ``uvicorn --workers 2`` with the app
factory, after ``sharetrail init``, on an external chain (a Hardhat node process; the embedded chain
is one process's by construction and refuses a second) and a shared database.

Connections are pinned to workers: each keep-alive connection's server side is looked up in
``/proc`` (which worker process holds the accepted socket), and connections are opened until each
worker holds two. Batches then go to both workers at once over those connections, so both are known
to have ingested concurrently. Then:

- one gap-free log sequence, each event id once, every event at the index its worker answered, with
  exactly the content sent;
- one anchoring leader: one holder of the leader lock (the PostgreSQL advisory lock in ``pg_locks``;
  with SQLite the ``flock`` on ``anchor.lock`` in ``/proc/locks``), and it is one of the workers;
- on chain, the ``Anchored`` sizes strictly increase, every transaction of the anchoring key is an
  anchor (its nonce equals the number of anchors: no duplicate or failed attempt by a second
  anchorer), and the last anchor covers the whole log.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text
from web3 import Web3

from ledger.chain.contracts import load_artifact
from ledger.log.leader import ANCHOR_LOCK_KEY
from tests.fault.support import (
    BOOT,
    Operator,
    check_log,
    cli_command,
    read_log,
    wait_anchored,
    wait_for,
)
from tests.support.evm_node import EvmNode, evm_node  # noqa: F401
from tests.support.live import free_port

pytestmark = pytest.mark.external_chain

WORKERS = 2
PER_WORKER = 2  # pinned connections per worker
BATCHES = 8  # per connection
EVENTS = 50  # per batch


def _workers_of(master: int) -> list[int]:
    """uvicorn's worker processes: children of the master started by multiprocessing's spawn (the
    master also has multiprocessing's resource tracker as a child)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == master and b"spawn_main" in cmdline:
            found.append(int(entry))
    return sorted(found)


def _server_socket_inode(server_port: int, client_port: int) -> int | None:
    """The inode of the accepted (server-side) socket of the loopback connection from ``client_port``."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, inode = fields[1], fields[2], int(fields[9])
        if int(local.split(":")[1], 16) == server_port and int(remote.split(":")[1], 16) == client_port:
            return inode
    return None


def _owner(pids: list[int], inode: int) -> int | None:
    target = f"socket:[{inode}]"
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    return pid
            except OSError:
                continue
    return None


Pinned = dict[int, list[http.client.HTTPConnection]]


def _pin(port: int, headers: dict[str, str], workers: list[int]) -> Pinned:
    """Open keep-alive connections until each worker holds PER_WORKER of them."""
    pinned: Pinned = {pid: [] for pid in workers}
    deadline = time.monotonic() + 120
    while any(len(c) < PER_WORKER for c in pinned.values()):
        assert time.monotonic() < deadline, f"connections never reached every worker: {pinned}"
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        conn.request("GET", "/v1/log/checkpoint", headers=headers)
        response = conn.getresponse()
        response.read()
        assert response.status == 200
        assert conn.sock is not None
        inode = _server_socket_inode(port, conn.sock.getsockname()[1])
        owner = _owner(workers, inode) if inode is not None else None
        if owner is not None and len(pinned[owner]) < PER_WORKER:
            pinned[owner].append(conn)
        else:
            conn.close()
    return pinned


@pytest.fixture(
    params=[
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("sqlite", marks=pytest.mark.slow),  # the fast subset runs the PostgreSQL case
    ]
)
def workers_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'sharetrail.sqlite'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def uvicorn_workers(evm_node: EvmNode, workers_db: str, tmp_path: Path) -> Iterator[dict[str, Any]]:  # noqa: F811
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARETRAIL_")}
    env |= {
        "SHARETRAIL_DATA_DIR": str(tmp_path / "data"),
        "SHARETRAIL_DB_URL": workers_db,
        "SHARETRAIL_CHAIN": evm_node.url,
        "SHARETRAIL_BOOTSTRAP_TOKEN": BOOT,
        "SHARETRAIL_ANCHOR_INTERVAL": "0.3",
    }
    done = subprocess.run([*cli_command(), "init"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "api.app:create_app", "--workers", str(WORKERS)]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log"]
    root = Path(__file__).resolve().parents[2]
    log_path = tmp_path / "uvicorn.log"
    with log_path.open("wb") as log:
        master = subprocess.Popen(cmd, env=env, cwd=root, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        assert master.poll() is None, log_path.read_text()
        try:
            return httpx.get(f"{url}/healthz", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(healthy, 120, lambda: f"workers not up:\n{log_path.read_text()}", step=0.2)
        workers: list[int] = []

        def all_workers() -> bool:
            workers[:] = _workers_of(master.pid)
            return len(workers) == WORKERS

        wait_for(all_workers, 60, lambda: f"workers of {master.pid}: {workers}")
        yield {"url": url, "port": port, "workers": workers, "env": env, "log": log_path}
    finally:
        master.terminate()
        try:
            master.wait(timeout=60)
        except subprocess.TimeoutExpired:
            master.kill()
            master.wait()


def _leader_holders(db_url: str, data_dir: Path) -> list[int]:
    """Process ids holding the anchoring leader lock (PostgreSQL: backend pids)."""
    if db_url.startswith("postgresql"):
        engine = create_engine(db_url)
        try:
            with engine.connect() as conn:
                rows = conn.execute(
                    text(
                        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
                        "AND classid = :hi AND objid = :lo AND objsubid = 1"
                    ),
                    {"hi": (ANCHOR_LOCK_KEY >> 32) & 0xFFFFFFFF, "lo": ANCHOR_LOCK_KEY & 0xFFFFFFFF},
                )
                return [int(r[0]) for r in rows]
        finally:
            engine.dispose()
    inode = (data_dir / "anchor.lock").stat().st_ino
    holders = []
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if fields[1] == "FLOCK" and int(fields[5].rsplit(":", 1)[1]) == inode:
            holders.append(int(fields[4]))
    return holders


def _pg_client(db_url: str, backend: int, workers: list[int]) -> int | None:
    """The worker whose connection PostgreSQL backend ``backend`` serves (its client port, found
    among the workers' sockets)."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            client_port = conn.execute(
                text("SELECT client_port FROM pg_stat_activity WHERE pid = :p"), {"p": backend}
            ).scalar_one()
    finally:
        engine.dispose()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == int(client_port):
            return _owner(workers, int(fields[9]))
    return None


def test_two_workers_share_one_log_and_one_leader(
    uvicorn_workers: dict[str, Any],
    workers_db: str,
    evm_node: EvmNode,  # noqa: F811
    tmp_path: Path,
) -> None:
    url, port, workers = uvicorn_workers["url"], uvicorn_workers["port"], uvicorn_workers["workers"]
    operator = Operator.register(url, seq=720)
    pinned = _pin(port, operator.headers, workers)
    answers: dict[int, list[int]] = {pid: [] for pid in workers}  # statuses, per worker
    start = threading.Barrier(WORKERS * PER_WORKER)

    def ingest(pid: int, conn: http.client.HTTPConnection) -> None:
        start.wait(timeout=60)
        for _ in range(BATCHES):
            batch = operator.new_batch(f"w{pid}", EVENTS)
            body = json.dumps(batch.events)
            conn.request(
                "POST",
                "/v1/access-events",
                body=body,
                headers={**operator.headers, "Content-Type": "application/json"},
            )
            response = conn.getresponse()
            batch.status, batch.body = response.status, json.loads(response.read())
            with operator._lock:
                operator.batches.append(batch)
            answers[pid].append(response.status)

    threads = [
        threading.Thread(target=ingest, args=(pid, conn), daemon=True)
        for pid, conns in pinned.items()
        for conn in conns
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
        assert not thread.is_alive()
    for conns in pinned.values():
        for conn in conns:
            conn.close()

    for pid in workers:  # each worker answered its connections' batches, all acknowledged
        assert answers[pid] == [201] * (PER_WORKER * BATCHES), answers[pid]
    total = WORKERS * PER_WORKER * BATCHES * EVENTS
    entries = read_log(url, operator.headers)
    assert len(entries) == total
    check_log(operator, entries)
    wait_anchored(url, operator.headers, total)

    holders = _leader_holders(workers_db, tmp_path / "data")
    assert len(holders) == 1, f"leader lock holders: {holders}"
    if workers_db.startswith("postgresql"):
        holder = _pg_client(workers_db, holders[0], workers)
    else:
        holder = holders[0]
    assert holder in workers, f"the leader lock is held by {holder}, not a worker of {workers}"

    anchor_address = httpx.get(f"{url}/healthz", timeout=30).json()["contracts"]["Anchor"]
    w3 = Web3(Web3.HTTPProvider(evm_node.url))
    abi = load_artifact("Anchor")["abi"]
    anchor = w3.eth.contract(address=Web3.to_checksum_address(anchor_address), abi=abi)
    events = sorted(
        anchor.events.Anchored().get_logs(from_block=0), key=lambda e: (e["blockNumber"], e["logIndex"])
    )
    sizes = [int(e["args"]["treeSize"]) for e in events]
    assert sizes == sorted(set(sizes)) and sizes[-1] == total, sizes
    senders = {w3.eth.get_transaction(e["transactionHash"])["from"] for e in events}
    assert len(senders) == 1
    assert w3.eth.get_transaction_count(senders.pop()) == len(events), "an anchoring attempt failed"
