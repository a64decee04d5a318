"""trail: an index on (kind, idx), so "every refusal, newest first" reads a page, not every refusal

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23

``ix_log_entries_kind_time`` serves kind + time range; ordered by log index (the trail's keyset) it
still sorts every entry of the kind — at 10M events, every denied attempt (docs/benchmarks.md,
``sharetrail bench trail``). With ``(kind, idx)`` the page is the index's first rows.
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Only an index: no table copy, so the append-only triggers stay.
    op.create_index("ix_log_entries_kind_idx", "log_entries", ["kind", "idx"])


def downgrade() -> None:
    op.drop_index("ix_log_entries_kind_idx", "log_entries")
