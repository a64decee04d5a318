"""``ledger.gcpause.gc_paused``: nests, overlaps across threads, and leaves GC as it found it."""

from __future__ import annotations

import gc
import random
import threading
import time
from collections.abc import Iterator

import pytest

from ledger.gcpause import gc_paused


@pytest.fixture(autouse=True)
def gc_back_on() -> Iterator[None]:
    yield
    gc.enable()


def test_nested_and_raising() -> None:
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner pause leaves it off for the outer one
    assert gc.isenabled()
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_left_off_when_found_off() -> None:
    gc.disable()
    with gc_paused():
        pass
    assert not gc.isenabled()


def test_overlapping_pauses_in_two_threads() -> None:
    """A enters, B enters, A leaves: still paused for B; B leaves: back on. (With a plain
    'was it on?' per pause, B would find it off, and an enable by A between B's look and B's
    disable left GC off for good.)"""
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen: list[bool] = []

    def a() -> None:
        with gc_paused():
            a_in.set()
            b_in.wait()
        a_out.set()

    def b() -> None:
        a_in.wait()
        with gc_paused():
            b_in.set()
            a_out.wait()
            seen.append(gc.isenabled())

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == [False]
    assert gc.isenabled()


def test_many_threads_end_with_gc_on() -> None:
    rng = random.Random(7)
    delays = [[rng.random() / 2000 for _ in range(50)] for _ in range(8)]

    def work(mine: list[float]) -> None:
        for d in mine:
            with gc_paused():
                time.sleep(d)
            time.sleep(d / 3)

    threads = [threading.Thread(target=work, args=(d,)) for d in delays]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert gc.isenabled()
