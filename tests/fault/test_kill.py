"""``kill -9`` of a real ``sharetrail serve`` during batch ingestion (issue 8, fault tests).

Two client threads post batches of 50 events to ``POST /v1/access-events`` without pause while the
anchoring loop anchors every 0.3 s on the embedded chain; at a random moment the server gets
SIGKILL — no shutdown handler, no flush — and is started again on the same data directory. After
every restart:

- every acknowledged (201) event is in the log at the index it was given, with exactly the content
  sent, and the sequence is gap-free with each event id once;
- a batch whose answer the kill cut off is in the log entirely or not at all (one transaction), and
  sending it again — what a client does without an answer — is answered 201, marked ``duplicate``
  exactly when it had been committed, at the same indices;
- anchoring catches up after the restart and the server's integrity audit reports the log intact.

At the end of the 20 trials ``sharetrail verify`` (the CLI, on the stopped server's data directory)
exits 0. The fast subset runs 2 trials and leaves the CLI out (one more process start).
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.fault.support import (
    Batch,
    Operator,
    ServerProcess,
    check_log,
    cli_verify,
    read_log,
    verify_over_http,
    wait_anchored,
    wait_for,
)

CLIENTS = 2


def _ingest_until_killed(server: ServerProcess, operator: Operator, trial: int, rng: random.Random) -> int:
    """Post from CLIENTS threads until the server is killed; return how many batches were cut off."""
    start = len(operator.batches)
    stop = threading.Event()

    def client(worker: int) -> None:
        with httpx.Client(timeout=60) as http:
            while not stop.is_set():
                if operator.post(http, operator.new_batch(f"k{trial}w{worker}")).status is None:
                    return  # the server is gone

    threads = [threading.Thread(target=client, args=(w,), daemon=True) for w in range(CLIENTS)]
    for thread in threads:
        thread.start()
    wanted = 2 + rng.randrange(6)
    wait_for(
        lambda: sum(b.acknowledged for b in operator.batches[start:]) >= wanted,
        120,
        lambda: f"trial {trial}: fewer than {wanted} batches acknowledged:\n{server.tail()}",
        step=0.01,
    )
    time.sleep(rng.uniform(0, 0.25))  # a random point in the stream, not a wait for a condition
    server.kill9()
    stop.set()
    for thread in threads:
        thread.join(timeout=120)
        assert not thread.is_alive()
    trial_batches = operator.batches[start:]
    answered = {b.status for b in trial_batches if b.status is not None}
    assert answered <= {201}, f"trial {trial}: answers other than 201: {answered}"
    return sum(b.status is None for b in trial_batches)


def _resend_cut_off(operator: Operator, cut: list[Batch], entries: list[dict[str, object]]) -> None:
    """A batch without an answer is all in the log or not at all; sent again it is idempotent."""
    index_of = {e["event_id"]: e["index"] for e in entries}
    with httpx.Client(timeout=60) as http:
        for batch in cut:
            present = [index_of.get(i) for i in batch.ids]
            committed = present[0] is not None
            assert all((p is not None) == committed for p in present), "a batch was half committed"
            again = operator.post(http, Batch(batch.events))
            assert again.status == 201, again.body
            assert [r["duplicate"] for r in again.body] == [committed] * len(batch.events)
            if committed:
                assert [r["index"] for r in again.body] == present


def _run_trials(tmp_path: Path, trials: int, *, cli: bool) -> None:
    rng = random.Random(8 * trials)
    server = ServerProcess(
        tmp_path / "data", {"SHARETRAIL_ANCHOR_INTERVAL": "0.3", "SHARETRAIL_ANCHOR_BATCH": "200"}
    )
    cut_total = 0
    try:
        server.start()
        operator = Operator.register(server.url)
        for trial in range(trials):
            start = len(operator.batches)
            cut_total += _ingest_until_killed(server, operator, trial, rng)
            server.start()
            entries = read_log(server.url, operator.headers)
            check_log(operator, entries)
            cut = [b for b in operator.batches[start:] if b.status is None]
            _resend_cut_off(operator, cut, entries)
            entries = read_log(server.url, operator.headers)
            check_log(operator, entries)
            wait_anchored(server.url, operator.headers, len(entries))
            report = verify_over_http(server.url)
            assert report["intact"] is True and report["problems"] == [], report
            assert report["entries"] == len(entries)
        sent = {i for b in operator.batches for i in b.ids}
        assert {e["event_id"] for e in entries} == sent, "every event sent is in the log, once"
    finally:
        server.stop()
    assert cut_total >= 1, "no kill landed while a batch was in flight"
    if not cli:
        return
    done = cli_verify(server.env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "intact: every record matches the roots anchored on chain" in done.stdout


@pytest.mark.timeout(300)
def test_kill9_during_ingestion_loses_nothing_acknowledged(tmp_path: Path) -> None:
    _run_trials(tmp_path, trials=2, cli=False)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_kill9_during_ingestion_20_trials(tmp_path: Path) -> None:
    _run_trials(tmp_path, trials=20, cli=True)
