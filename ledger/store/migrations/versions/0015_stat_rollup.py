"""stat_rollup: exchanges counted per Beijing day (and month), maintained from the log by a cursor

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-24

The statistics (``GET /v1/audit/statistics``) counted every access event of the period with
``GROUP BY`` over the log: 32 s for the whole of a 10M-event log. The rollups hold the same counts
per Beijing day: ``stat_rollup`` by (day, provider, resource, accessor) for reports narrowed to a
party or a resource, ``stat_rollup_resources`` by (grain, period, provider, resource) and
``stat_rollup_accessors`` by (grain, period, accessor) — each per day and per month — for the
city-wide report. ``stat_rollup_cursor`` is one row: every log entry below ``next_index`` is counted,
moved in the same transaction as the counts. It starts at 0: an existing log is rolled up after the
upgrade by the rollup worker's catch-up (one grouped ``INSERT … SELECT`` per chunk of log indices),
and until then the statistics read the entries not yet rolled up from the log itself — exact at
every moment (docs/audit.md). On SQLite the tables are ``WITHOUT ROWID`` (the key is the table).
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def _key(name: str) -> sa.Column[str]:
    return sa.Column(name, sa.String(64), primary_key=True)


def upgrade() -> None:
    op.create_table(
        "stat_rollup",
        sa.Column("day", sa.Date(), primary_key=True),
        _key("provider"),
        _key("resource"),
        _key("accessor"),
        sa.Column("exchanges", sa.BigInteger(), nullable=False),
        sqlite_with_rowid=False,
    )
    for column in ("accessor", "provider", "resource"):
        op.create_index(f"ix_stat_rollup_{column}_day", "stat_rollup", [column, "day"])
    op.create_table(
        "stat_rollup_resources",
        sa.Column("grain", sa.String(8), primary_key=True),
        sa.Column("period", sa.Date(), primary_key=True),
        _key("provider"),
        _key("resource"),
        sa.Column("exchanges", sa.BigInteger(), nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "stat_rollup_accessors",
        sa.Column("grain", sa.String(8), primary_key=True),
        sa.Column("period", sa.Date(), primary_key=True),
        _key("accessor"),
        sa.Column("exchanges", sa.BigInteger(), nullable=False),
        sqlite_with_rowid=False,
    )
    cursor = op.create_table(
        "stat_rollup_cursor",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("next_index", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.bulk_insert(cursor, [{"id": 1, "next_index": 0, "updated_at": datetime.now(UTC)}])


def downgrade() -> None:
    op.drop_table("stat_rollup_cursor")
    op.drop_table("stat_rollup_accessors")
    op.drop_table("stat_rollup_resources")
    op.drop_table("stat_rollup")
