"""trail: each trail column indexed with the log index and the kind — (accessor | provider | resource |
grant_ref | purpose, idx, kind) — replacing the single-column indexes

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-24

A trail page is the newest entries matching a filter, and ``(column, idx)`` is that order. On SQLite
the single-column indexes already were (an index carries the rowid, and ``idx`` is the rowid), so
nothing changes there; on PostgreSQL they were not, and every match was sorted to find a page (a
300k-event log: p95 188 ms for one accessor, 214 ms for one purpose; ``sharetrail bench trail
--postgres``, docs/benchmarks.md). The kind rides along so that "this party's refusals" sifts the
party's entries in the index instead of reading each row from the table (10M events, cold cache:
p95 1.7 s).
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

COLUMNS = ("accessor", "provider", "resource", "grant_ref", "purpose")


def upgrade() -> None:
    # Only indexes: no table copy, so the append-only triggers stay.
    for column in COLUMNS:
        op.create_index(f"ix_log_entries_{column}_idx", "log_entries", [column, "idx", "kind"])
        op.drop_index(f"ix_log_entries_{column}", "log_entries")  # its prefix


def downgrade() -> None:
    for column in COLUMNS:
        op.create_index(f"ix_log_entries_{column}", "log_entries", [column])
        op.drop_index(f"ix_log_entries_{column}_idx", "log_entries")
