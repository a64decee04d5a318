"""The external chain node goes away during ingestion, then returns (issue 8, fault tests).

A real ``sharetrail serve`` on ``SHARETRAIL_CHAIN=http://…`` (a Hardhat node process) ingests a batch
of 50 events every 0.1 s through ``POST /v1/access-events`` while the anchoring loop anchors every
0.5 s. Then the node is out for a while:

- **refused** — a TCP proxy between sharetrail and the node is cut: nothing listens, open connections
  are reset. This is what sharetrail sees when the node's process is killed. We do not kill Hardhat
  itself: its chain lives in memory, so a restarted Hardhat is an *empty* chain (the anchor contract
  gone), which is a different event from an outage. A production node (Besu, Geth) keeps its chain
  on disk and comes back with it — which the proxy reproduces: the node behind it keeps its state.
- **hung** — the node process is stopped (SIGSTOP) and continued (SIGCONT): connections are accepted
  by the kernel but never answered, so every request runs into ``SHARETRAIL_CHAIN_TIMEOUT`` (2 s
  here). The worse case for a client: nothing fails fast.

Throughout, every batch must be acknowledged (201) — recording needs only the database — and
batches keep being answered: never a pause longer than the chain timeout plus 8 s (with a hung node a
request can wait once for the node: the server refreshes a party's on-chain status every
``SHARETRAIL_SUSPENSION_CACHE_SECONDS`` and, while the chain does not answer, keeps the status it last
read). A party whose status the server never read is refused (503 ``chain_unavailable``). After the
node returns, anchoring must catch up — a checkpoint covering every event acknowledged before the
return — within 10 s; the ``Anchored`` events on chain must have strictly increasing sizes (each
size anchored once: no double anchor), ending at the log's size; the log is gap-free with every
acknowledged event's exact content, and the integrity audit reports it intact.

The fast variant cuts for 6 s; the slow ones (``-m slow``) for 60 s, in both modes.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.fault.proxy import CuttableProxy
from tests.fault.support import (
    Operator,
    ServerProcess,
    anchored_sizes,
    check_log,
    checkpoint,
    read_log,
    verify_over_http,
    wait_anchored,
    wait_for,
)
from tests.support.evm_node import EvmNode, evm_node  # noqa: F401

pytestmark = pytest.mark.external_chain

PACE = 0.1  # seconds between batches
CATCH_UP = 10.0  # issue 8: anchoring catches up within 10 s of the node's return
CHAIN_TIMEOUT = 2.0
MAX_STALL = CHAIN_TIMEOUT + 8.0  # a request may wait once for the hung node, plus a loaded machine


def _outage(evm_node: EvmNode, tmp_path: Path, seconds: float, mode: str) -> None:  # noqa: F811
    with CuttableProxy("127.0.0.1", evm_node.port) as proxy:
        down: Callable[[], None] = proxy.cut if mode == "refused" else evm_node.pause
        up: Callable[[], None] = proxy.restore if mode == "refused" else evm_node.resume
        env = {
            "SHARETRAIL_CHAIN": proxy.url,
            "SHARETRAIL_CHAIN_TIMEOUT": str(CHAIN_TIMEOUT),
            "SHARETRAIL_ANCHOR_INTERVAL": "0.5",
        }
        with ServerProcess(tmp_path / "data", env) as server:
            operator = Operator.register(server.url, seq=640)
            anchor = httpx.get(f"{server.url}/healthz", timeout=30).json()["contracts"]["Anchor"]
            stop = threading.Event()
            sent_at: list[float] = []

            def ingest() -> None:
                with httpx.Client(timeout=120) as http:
                    while not stop.is_set():
                        began = time.monotonic()
                        sent_at.append(began)
                        operator.post(http, operator.new_batch("o"))
                        time.sleep(max(0.0, PACE - (time.monotonic() - began)))  # pacing, not a check

            thread = threading.Thread(target=ingest, daemon=True)
            thread.start()
            try:
                wait_for(
                    lambda: int(checkpoint(server.url, operator.headers)["tree_size"]) > 0,
                    60,
                    lambda: f"nothing anchored before the outage:\n{server.tail()}",
                )
                before = len(operator.batches)
                went_down = time.monotonic()
                down()
                try:
                    # a party whose on-chain status this server never read is refused until the chain
                    # answers (fail closed), while the operator's last known status stands
                    unknown = httpx.get(
                        f"{server.url}/v1/log/checkpoint",
                        headers={"Authorization": f"Bearer {operator.department_token}"},
                        timeout=60,
                    )
                    assert unknown.status_code == 503
                    assert unknown.json()["error"]["code"] == "chain_unavailable"
                    wait_for(lambda: time.monotonic() - went_down >= seconds, seconds + 60, lambda: "clock")
                    during = operator.batches[before:]
                finally:
                    up()
                came_back = time.monotonic()
                # everything acknowledged up to the return; the checkpoint read itself needs no chain
                at_return = int(checkpoint(server.url, operator.headers)["log_size"])
                took = wait_anchored(server.url, operator.headers, at_return, timeout=120)
                caught_up = time.monotonic() - came_back
                print(f"{mode} outage of {seconds:g} s: caught up {caught_up:.2f} s after the return")
            finally:
                stop.set()
                thread.join(timeout=180)
            assert not thread.is_alive()
            answered = [went_down, *(b.done_at for b in during), came_back]
            stall = max(b - a for a, b in itertools.pairwise(answered))
            assert stall <= MAX_STALL, f"no batch answered for {stall:.1f} s during the outage"
            assert {b.status for b in operator.batches} == {201}, [
                (b.status, b.body) for b in operator.batches if b.status != 201
            ][:3]
            assert took <= caught_up <= CATCH_UP, (
                f"anchoring caught up {caught_up:.1f} s after the node returned:\n{server.tail()}"
            )
            size = len(operator.batches) * len(operator.batches[0].events)
            wait_anchored(server.url, operator.headers, size)
            entries = read_log(server.url, operator.headers)
            assert len(entries) == size
            check_log(operator, entries)
            report = verify_over_http(server.url)
            assert report["intact"] is True and report["entries"] == size, report
        sizes = anchored_sizes(evm_node.url, anchor)
        assert sizes == sorted(set(sizes)), f"a size anchored twice or out of order: {sizes}"
        assert sizes[-1] == size
        assert sent_at[-1] - sent_at[0] >= seconds


@pytest.mark.timeout(300)
def test_node_unreachable_for_6s(evm_node: EvmNode, tmp_path: Path) -> None:  # noqa: F811
    _outage(evm_node, tmp_path, 6.0, "refused")


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("mode", ["refused", "hung"])
def test_node_out_for_60s(evm_node: EvmNode, tmp_path: Path, mode: str) -> None:  # noqa: F811
    _outage(evm_node, tmp_path, 60.0, mode)
