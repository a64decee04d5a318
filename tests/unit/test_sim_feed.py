"""The simulator's event producer (ledger.sim.feed): the log entries it makes are pinned byte for
byte, in one process or two, and a failing producer process is reported, not waited on forever."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ledger.canonical import canonical_json
from ledger.log import merkle
from ledger.log.events import AccessEvent, EncodedEntry, GatewayEntry, trail_columns
from ledger.sim import city, feed, skew

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
OPERATOR = "operator-0001"

# Computed before the producer moved out of ledger/sim/run.py (Simulation._event, then
# ``canonical_json(event.leaf(recorded_by=OPERATOR))``, 2026-11-24): the log must not change.
GOLDEN_FIRST = (
    "7b40ebe5fadd4312c5123f6cfcd4a76caa51ba9aa0d5e45d1c079c0caa3bd841",
    "745c79ef8db52f3875515ddfe6ebd962ce9ba689f85884f5fd230a7b3ef38fa5",
    "e68ceb2abd287ef955da2fc65e827072a136615b590980a716b894acb14e4b9c",
)
GOLDEN_ROOT = "f27177d75fccf86da7cddc40d166840e613171717e2bd2b5b53bbfb5ab9cdc8e"  # of all 3000 leaves


def fixed_plan(*, total: int = 3000, batch: int = 1000) -> feed.FeedPlan:
    """A city of 34 departments and 100 items, seed 2021, with ids the test chooses."""
    rng = random.Random(2021)
    departments = city.roster(34)
    catalog = city.plan_catalog(departments, 100, rng)
    model = skew.CityModel(departments, catalog)
    model.shuffle(rng)
    plans = skew.plan_requests(model, 20, rng)
    grants = {(p.requester, p.resource): p.terms for p in plans if p.approve}
    return feed.FeedPlan(
        model=model,
        grant_terms=grants,
        grant_ids={pair: f"0x{pair[0]:032x}{pair[1]:032x}" for pair in grants},
        party_ids=tuple(f"dept-{d.seq:04d}" for d in departments),
        resource_ids=tuple(f"res-{n:05d}" for n in range(len(catalog))),
        total=total,
        now=NOW,
        days=365,
        rng_state=rng.getstate(),
        batch=batch,
    )


def leaf_hashes(batches: Sequence[Sequence[GatewayEntry | EncodedEntry]]) -> list[bytes]:
    return [
        merkle.leaf_hash(canonical_json(entry.leaf(recorded_by=OPERATOR)))
        for batch in batches
        for entry in batch
        if isinstance(entry, GatewayEntry)
    ]


def test_the_entries_of_a_fixed_city_are_pinned() -> None:
    producer = feed.Producer(fixed_plan())
    batches = list(producer)
    assert [len(b) for b in batches] == [1000, 1000, 1000]
    hashes = leaf_hashes(batches)
    assert tuple(h.hex() for h in hashes[:3]) == GOLDEN_FIRST
    assert merkle.root(hashes).hex() == GOLDEN_ROOT
    # The skew report's counts, as the old in-process code counted them.
    stats = producer.skew
    assert (stats.events, stats.denied, stats.office_hours, stats.with_grant) == (3000, 55, 2600, 347)
    assert dict(stats.by_mode) == {"verify": 756, "aggregate": 1071, "raw": 476, "masked": 697}
    assert stats.by_accessor[0] == 979 and stats.by_accessor[33] == 16
    assert len(stats.by_resource) == 89 and stats.by_resource.most_common(1) == [(83, 595)]


def test_entries_encoded_by_the_producer_are_the_pinned_leaves() -> None:
    """With the recorder in the plan, the producer ships each leaf's canonical bytes and trail
    columns (``EncodedEntry``); the log appends exactly those, so they must be the pinned leaves,
    made for that recorder."""
    plain = [entry for batch in feed.Producer(fixed_plan()) for entry in batch]
    encoded = [
        entry for batch in feed.Producer(replace(fixed_plan(), recorded_by=OPERATOR)) for entry in batch
    ]
    assert all(isinstance(entry, EncodedEntry) for entry in encoded)
    hashes = [merkle.leaf_hash(entry.leaf) for entry in encoded if isinstance(entry, EncodedEntry)]
    assert hashes == leaf_hashes([plain])
    assert merkle.root(hashes).hex() == GOLDEN_ROOT
    for made, entry in zip(plain, encoded, strict=True):
        assert isinstance(made, GatewayEntry) and isinstance(entry, EncodedEntry)
        assert entry.recorded_by == OPERATOR
        assert entry.trail == trail_columns(made.leaf(recorded_by=OPERATOR))
        assert (
            entry.event_id,
            entry.kind,
            entry.time,
            entry.accessor,
            entry.provider,
            entry.resource,
            entry.level,
        ) == made[:7]


def test_a_prepared_entry_is_the_validated_event_and_its_leaf() -> None:
    for entry in next(iter(feed.Producer(fixed_plan(total=200, batch=200)))):
        assert isinstance(entry, GatewayEntry)
        fields = {k: v for k, v in entry.body.items() if k != "v"}
        event = AccessEvent.model_validate({**fields, "time": entry.time})
        assert entry.leaf(recorded_by=OPERATOR) == event.leaf(recorded_by=OPERATOR)
        assert event.prepare() == entry
        assert (entry.event_id, entry.kind, entry.accessor, entry.provider, entry.resource, entry.level) == (
            event.event_id,
            event.kind.value,
            event.accessor,
            event.provider,
            event.resource,
            event.level,
        )


def test_the_producer_process_yields_the_same_batches() -> None:
    plan = fixed_plan(total=2500, batch=1000)
    local = feed.Producer(plan)
    expected = list(local)
    with feed.ProcessFeed(plan) as remote:
        got = list(remote)
    assert got == expected
    assert [len(b) for b in got] == [1000, 1000, 500]
    assert remote.skew == local.skew


def test_a_failing_producer_process_is_reported() -> None:
    plan = replace(fixed_plan(total=10), batch=0)  # Producer refuses a batch size below 1
    with feed.ProcessFeed(plan) as remote, pytest.raises(feed.ProducerFailed) as caught:
        list(remote)
    assert caught.value.code == "producer_failed"
    assert "batch must be >= 1" in caught.value.message


def test_a_producer_process_that_dies_is_reported_not_waited_on() -> None:
    with feed.ProcessFeed(fixed_plan(total=50_000, batch=1000)) as remote:
        batches = iter(remote)
        assert len(next(batches)) == 1000
        assert remote.pid is not None
        os.kill(remote.pid, signal.SIGKILL)
        with pytest.raises(feed.ProducerFailed) as caught:
            for _ in batches:  # what was already in the pipe, then the end
                pass
    assert "exited (code -9) before its last batch" in caught.value.message


def test_the_producer_process_needs_no_guarded_main_module(tmp_path: Path) -> None:
    """A script without ``if __name__ == "__main__"`` (multiprocessing's spawn would re-run it)."""
    script = tmp_path / "unguarded.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})\n"
        "from tests.unit.test_sim_feed import fixed_plan\n"
        "from ledger.sim import feed\n"
        "with feed.ProcessFeed(fixed_plan(total=500, batch=200)) as remote:\n"
        "    print(sum(len(b) for b in remote), remote.skew.events)\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["500", "500"]


@pytest.mark.parametrize(
    ("event", "columns"),
    [
        ({}, (None, None, None, None)),
        (
            {"provider": "p" * 70, "grant": "g" * 90, "purpose": "u" * 70, "mode": "m" * 20},
            ("p" * 64, "g" * 80, "u" * 64, "m" * 16),
        ),
        ({"grant": "", "contract": "c-1"}, (None, "c-1", None, None)),  # an empty grant: the contract
        ({"grant": 7, "contract": "c-1"}, (None, "c-1", None, None)),  # not text: as if absent
        ({"grant": "", "contract": ""}, (None, "", None, None)),
        ({"grant": "g-1", "contract": "c-1", "provider": 3, "mode": None}, (None, "g-1", None, None)),
    ],
)
def test_trail_columns(event: dict[str, object], columns: tuple[str | None, ...]) -> None:
    """The trail's copies of an entry's fields: text only, cut to the column widths, the grant or
    else the open contract."""
    assert trail_columns(event) == columns
