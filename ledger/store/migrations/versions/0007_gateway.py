"""gateway: data sources, grant usage counters, the data-subject index, subject tokens; trail columns

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "data_sources",
        sa.Column("resource_id", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("location", sa.LargeBinary(), nullable=False),  # sealed: a path or a database URL
        sa.Column("table_name", sa.String(128), nullable=True),
        sa.Column("query", sa.Text(), nullable=True),
        sa.Column("registered_by", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "grant_usage",
        sa.Column("grant_id", sa.String(80), primary_key=True),
        sa.Column("accesses", sa.BigInteger(), nullable=False),
        sa.Column("last_index", sa.BigInteger(), nullable=True),
    )
    op.create_table(
        "log_subjects",
        sa.Column("subject_hash", sa.LargeBinary(32), primary_key=True),
        sa.Column("idx", sa.BigInteger(), primary_key=True),
    )
    op.create_table(
        "subject_tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("subject_hash", sa.LargeBinary(32), nullable=False, index=True),
        sa.Column("issued_by", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    # Trail columns, copied from the canonical entry at append time so the regulator's filters are
    # indexed; the entry bytes stay the authority (the verifier recomputes leaves from them).
    # Plain ADD COLUMN (never a batch table copy, which would drop the append-only triggers).
    op.add_column("log_entries", sa.Column("provider", sa.String(64), nullable=True))
    op.add_column("log_entries", sa.Column("grant_ref", sa.String(80), nullable=True))
    op.add_column("log_entries", sa.Column("purpose", sa.String(64), nullable=True))
    op.add_column("log_entries", sa.Column("mode", sa.String(16), nullable=True))
    for column in ("provider", "grant_ref", "purpose"):
        op.create_index(f"ix_log_entries_{column}", "log_entries", [column])
    op.create_index("ix_log_entries_kind_time", "log_entries", ["kind", "time"])
    # The subject index is written with its leaf, in the same transaction, and is append-only too.
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER log_subjects_no_{action.lower()} BEFORE {action} ON log_subjects "
                "BEGIN SELECT RAISE(ABORT, 'log_subjects is append-only'); END"
            )
    elif bind.dialect.name == "postgresql":
        op.execute(
            "CREATE TRIGGER log_subjects_append_only BEFORE UPDATE OR DELETE ON log_subjects "
            "FOR EACH ROW EXECUTE FUNCTION sharetrail_append_only()"
        )


def downgrade() -> None:
    op.drop_index("ix_log_entries_kind_time", "log_entries")
    for column in ("provider", "grant_ref", "purpose"):
        op.drop_index(f"ix_log_entries_{column}", "log_entries")
    for column in ("mode", "purpose", "grant_ref", "provider"):
        op.drop_column("log_entries", column)  # SQLite >= 3.35 drops a column in place
    for table in ("subject_tokens", "log_subjects", "grant_usage", "data_sources"):
        op.drop_table(table)
