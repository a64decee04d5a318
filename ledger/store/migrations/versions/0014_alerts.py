"""alerts: what the alert monitor raised as events arrived, and its cursor in the log

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-25

``alerts`` keeps each raised alert (rule, severity, subject, party, resource, grant or contract,
message, evidence log indices) until a regulator acknowledges it; a partial unique index allows one
*open* alert per rule and subject, so a rule firing again extends that alert instead of adding one.
``alert_cursor`` is one row: every log entry below ``next_index`` has been evaluated, written in the
same transaction as the alerts it raised, so a restart resumes exactly there. It starts at 0: an
existing log is evaluated from its first entry, in batches, after the upgrade (docs/audit.md).
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", _BIGID, primary_key=True, autoincrement=True),
        sa.Column("rule", sa.String(32), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("party", sa.String(64), nullable=True),
        sa.Column("resource", sa.String(64), nullable=True),
        sa.Column("grant_ref", sa.String(80), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("time", sa.String(40), nullable=True),
        sa.Column("evidence_json", sa.Text(), nullable=False),
        sa.Column("evidence_count", sa.BigInteger(), nullable=False),
        sa.Column("first_evidence", sa.BigInteger(), nullable=True),
        sa.Column("last_evidence", sa.BigInteger(), nullable=True),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("acknowledged_by", sa.String(32), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
    )
    op.create_index(
        "ux_alerts_open_subject",
        "alerts",
        ["rule", "subject"],
        unique=True,
        sqlite_where=sa.text("status = 'open'"),
        postgresql_where=sa.text("status = 'open'"),
    )
    op.create_index("ix_alerts_status_id", "alerts", ["status", "id"])
    op.create_index("ix_alerts_party_id", "alerts", ["party", "id"])
    op.create_index("ix_alerts_rule_id", "alerts", ["rule", "id"])
    op.create_index("ix_alerts_updated_at", "alerts", ["updated_at"])
    cursor = op.create_table(
        "alert_cursor",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("next_index", sa.BigInteger(), nullable=False),
        sa.Column("deadlines_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.bulk_insert(
        cursor, [{"id": 1, "next_index": 0, "deadlines_at": None, "updated_at": datetime.now(UTC)}]
    )


def downgrade() -> None:
    op.drop_table("alert_cursor")
    op.drop_table("alerts")
