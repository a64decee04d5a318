"""log_time_blocks: the earliest and latest event time of each block of 16,384 log indices

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-24

The trail pages newest first by log index, and a time window (``since`` / ``until``) is on the
event's own time. Without a link between the two, a window was read from the time index in full
and its log indices sorted to find the page: one day of a 10M-event log is ~27,000 entries, and
its p95 went from 24 to 140 ms with the page cache (docs/benchmarks.md, the trail section). Events
arrive in roughly time order, so each block of 16,384 log indices spans a short time; a window's
entries lie in the blocks whose span meets it, which bounds the page's log indices (a BRIN index,
in PostgreSQL's terms, kept by the append itself in the same transaction as the entries). The
bound is a superset — the time condition is still applied — so an out-of-order event only widens
it. Filled here from the existing entries (one grouped scan of the log).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

BLOCK_BITS = 14  # ledger.log.store.TIME_BLOCK_BITS at the time of this migration


def upgrade() -> None:
    op.create_table(
        "log_time_blocks",
        sa.Column(
            "block",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("min_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("max_time", sa.DateTime(timezone=True), nullable=False),
    )
    divide = "idx >> 14" if op.get_bind().dialect.name == "sqlite" else "idx / 16384"
    op.execute(
        "INSERT INTO log_time_blocks (block, min_time, max_time) "
        f"SELECT {divide}, min(time), max(time) FROM log_entries GROUP BY {divide}"
    )


def downgrade() -> None:
    op.drop_table("log_time_blocks")
