"""trail, lineage and statistics: time windows read from the index alone — (accessor, time, kind,
purpose, mode), (provider, time), (resource, time, kind, accessor, purpose, grant_ref), and (kind,
time) widened to (kind, time, provider, resource, accessor)

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-23

Measured on a 10M-event log (``sharetrail bench trail``, docs/benchmarks.md):
- "this resource on this day" walked the resource's single-column index newest first until it reached
  the day, past every later access of a hot resource (p95 626 ms); the window index reads just the day.
- the regulator's central question — what did this party take, for what purpose, in this period
  (谁来拿数据，拿数据干什么) — reads the accessor's window *and* its purposes and modes: with them in
  the index the table is not touched (p95 923 ms with ``(accessor, time)``, 87 ms covering).
- the lineage graph groups a resource's accesses by grant, accessor and purpose, and its onward shares
  read a department's resources' accesses since a date: covered, neither touches the table (the
  hottest resource's graph: 77 s before, 2.6 s).
- the statistics group a period's accesses by provider, resource, accessor and month: with those in
  ``(kind, time, …)`` the period's index range is all they read. It replaces ``(kind, time)``, which
  is its prefix.
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_log_entries_kind_window": ["kind", "time", "provider", "resource", "accessor"],
    "ix_log_entries_accessor_window": ["accessor", "time", "kind", "purpose", "mode"],
    "ix_log_entries_provider_time": ["provider", "time"],
    "ix_log_entries_resource_window": ["resource", "time", "kind", "accessor", "purpose", "grant_ref"],
}


def upgrade() -> None:
    # Only indexes: no table copy, so the append-only triggers stay.
    for name, columns in INDEXES.items():
        op.create_index(name, "log_entries", columns)
    op.drop_index("ix_log_entries_kind_time", "log_entries")


def downgrade() -> None:
    op.create_index("ix_log_entries_kind_time", "log_entries", ["kind", "time"])
    for name in INDEXES:
        op.drop_index(name, "log_entries")
