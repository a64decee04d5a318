"""log_time_blocks: blocks of 1,024 log indices (were 16,384)

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-24

A trail time window without a column filter is read newest first by log index from the top of the
last block whose time span meets the window (0016). Everything in that block after the window's
end is read and passed over first: up to a block's worth of entries, their canonical bytes
included. With 16,384 indices a block on a 10M-event log spans ~0.6 of a day, and a one-day
window's p95 was 332 ms with the file larger than the page cache (docs/benchmarks.md, the trail
section); with 1,024 the overshoot is at most 1,024 entries. The table grows to one row per 1,024
entries (~30,000 rows at 30M events, scanned in a few milliseconds). Rebuilt here from the log (one
grouped scan), and back at 16,384 on the way down.
"""

from __future__ import annotations

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def _rebuild(bits: int) -> None:
    divide = f"idx >> {bits}" if op.get_bind().dialect.name == "sqlite" else f"idx / {1 << bits}"
    op.execute("DELETE FROM log_time_blocks")
    op.execute(
        "INSERT INTO log_time_blocks (block, min_time, max_time) "
        f"SELECT {divide}, min(time), max(time) FROM log_entries GROUP BY {divide}"
    )


def upgrade() -> None:
    _rebuild(10)  # ledger.log.store.TIME_BLOCK_BITS at the time of this migration


def downgrade() -> None:
    _rebuild(14)
