"""open contracts (契约式开放), applications (依申请开放), the negative list (负面清单), usage declarations

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "open_contracts",
        sa.Column("id", sa.String(66), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("operator_id", sa.String(32), nullable=False, index=True),
        sa.Column("enterprise_id", sa.String(32), nullable=False, index=True),
        sa.Column("resources_json", sa.Text(), nullable=False),
        sa.Column("providers_json", sa.Text(), nullable=False),
        sa.Column("purposes_json", sa.Text(), nullable=False),
        sa.Column("scope_json", sa.Text(), nullable=False),
        sa.Column("obligations_json", sa.Text(), nullable=False),
        sa.Column("terms_hash", sa.String(66), nullable=False),
        sa.Column("terms_uri", sa.Text(), nullable=True),
        _ts("valid_from"),
        _ts("valid_until"),
        sa.Column("status", sa.String(32), nullable=False, index=True),
        sa.Column("proposal_typed_data", sa.Text(), nullable=False),
        sa.Column("proposal_signature", sa.String(132), nullable=True),
        sa.Column("proposal_tx", sa.String(66), nullable=True),
        sa.Column("signatures_json", sa.Text(), nullable=False),
        sa.Column("pending_json", sa.Text(), nullable=True),
        sa.Column("history_json", sa.Text(), nullable=False),
        sa.Column("application_id", sa.String(66), nullable=True),
        _ts("effective_at", True),
        _ts("terminated_at", True),
        _ts("created_at"),
    )
    op.create_table(
        "open_applications",
        sa.Column("id", sa.String(66), primary_key=True),
        sa.Column("enterprise_id", sa.String(32), nullable=False, index=True),
        sa.Column("resource_id", sa.String(32), nullable=False, index=True),
        sa.Column("provider_id", sa.String(32), nullable=False, index=True),
        sa.Column("purpose_code", sa.String(64), nullable=False),
        sa.Column("purpose_text", sa.Text(), nullable=False),
        sa.Column("scope_json", sa.Text(), nullable=False),
        sa.Column("qualifications_json", sa.Text(), nullable=False),
        sa.Column("qualifications_hash", sa.String(66), nullable=False),
        _ts("valid_from"),
        _ts("valid_until"),
        sa.Column("applied_on", sa.Date(), nullable=False),
        sa.Column("review_by", sa.Date(), nullable=False, index=True),
        sa.Column("status", sa.String(32), nullable=False, index=True),
        sa.Column("typed_data", sa.Text(), nullable=False),
        sa.Column("signature", sa.String(132), nullable=True),
        sa.Column("tx_hash", sa.String(66), nullable=True),
        sa.Column("reviews_json", sa.Text(), nullable=False),
        sa.Column("pending_json", sa.Text(), nullable=True),
        sa.Column("contract_id", sa.String(66), nullable=True),
        _ts("created_at"),
    )
    op.create_table(
        "negative_listings",
        sa.Column("resource_id", sa.String(32), primary_key=True),
        sa.Column("listed", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("by_id", sa.String(32), nullable=False),
        sa.Column("tx_hash", sa.String(66), nullable=False),
        _ts("updated_at"),
    )
    op.create_table(
        "derived_products",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("enterprise_id", sa.String(32), nullable=False, index=True),
        sa.Column("contract_id", sa.String(66), nullable=False, index=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("inputs_json", sa.Text(), nullable=False),
        sa.Column("resources_json", sa.Text(), nullable=False),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("release_mode", sa.String(32), nullable=False),
        sa.Column("log_index", sa.BigInteger(), nullable=False),
        _ts("created_at"),
    )


def downgrade() -> None:
    for table in ("derived_products", "negative_listings", "open_applications", "open_contracts"):
        op.drop_table(table)
