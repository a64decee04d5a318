"""catalog: resources and their versions

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "resources",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("code", sa.String(64), nullable=False, unique=True),
        sa.Column("provider_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "share_type",
            sa.Enum("unconditional", "conditional", "none", name="sharetype", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column(
            "open_type",
            sa.Enum(
                "open", "on_application", "contract", "none", name="opentype", native_enum=False, length=32
            ),
            nullable=False,
        ),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("metadata_json", sa.Text(), nullable=False),
        sa.Column("metadata_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("tx_hash", sa.String(66), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_resources_provider_id", "resources", ["provider_id"])
    op.create_table(
        "resource_versions",
        sa.Column("id", _BIGID, primary_key=True, autoincrement=True),
        sa.Column("resource_id", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("metadata_json", sa.Text(), nullable=False),
        sa.Column("metadata_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("tx_hash", sa.String(66), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("resource_id", "version"),
    )
    op.create_index("ix_resource_versions_resource_id", "resource_versions", ["resource_id"])


def downgrade() -> None:
    op.drop_table("resource_versions")
    op.drop_table("resources")
