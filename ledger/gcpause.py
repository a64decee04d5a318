"""Pausing the cyclic garbage collector around bulk work (process-wide, thread-safe)."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["gc_paused"]

_lock = threading.Lock()
_depth = 0  # pauses in progress, in any thread
_resume = False  # whether the first of them found GC on


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside the block, for code that builds many small containers
    holding no cycles (rows, nodes, results): each collection of the older generations walks every
    live container, so with GC on, building n of them costs O(n²) — a 10,000-entry append spent
    more time collecting than writing (docs/benchmarks.md, "The append without the garbage
    collector").

    Pauses nest and overlap across threads: a counter under a lock turns GC off when the first
    pause begins and back on when the last one ends, only if it was on when the first began (so
    a pause never turns on a GC someone else turned off, and two threads cannot leave it off
    between them). GC's allocation count keeps accruing meanwhile, so the first allocation after
    the last pause collects as it would have. Meant for batches, not for every small call: while
    pauses overlap without a gap nothing is collected, so callers pause only for large batches."""
    global _depth, _resume
    with _lock:
        if _depth == 0:
            _resume = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _resume:
                gc.enable()
