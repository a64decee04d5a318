"""share requests, decisions, grants

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

STATUSES = (
    "awaiting_signature",
    "pending",
    "awaiting_decision_signature",
    "awaiting_cosign",
    "granted",
    "rejected",
)


def upgrade() -> None:
    op.create_table(
        "share_requests",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("resource_id", sa.String(32), nullable=False),
        sa.Column("requester_id", sa.String(32), nullable=False),
        sa.Column("provider_id", sa.String(32), nullable=False),
        sa.Column("purpose_code", sa.String(64), nullable=False),
        sa.Column("purpose_text", sa.Text(), nullable=False),
        sa.Column("legal_basis", sa.Text(), nullable=False),
        sa.Column("scope_json", sa.Text(), nullable=False),
        sa.Column(
            "status", sa.Enum(*STATUSES, name="requeststatus", native_enum=False, length=32), nullable=False
        ),
        sa.Column("applied_on", sa.Date(), nullable=False),
        sa.Column("respond_by", sa.Date(), nullable=False),
        sa.Column("request_typed_data", sa.Text(), nullable=False),
        sa.Column("request_signature", sa.String(132), nullable=True),
        sa.Column("request_tx", sa.String(66), nullable=True),
        sa.Column("decision_typed_data", sa.Text(), nullable=True),
        sa.Column("decision_signature", sa.String(132), nullable=True),
        sa.Column("decision_tx", sa.String(66), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("decided_on", sa.Date(), nullable=True),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("cosign_txs", sa.Text(), nullable=False),
        sa.Column("grant_id", sa.String(66), nullable=True),
        sa.Column("revoked_tx", sa.String(66), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    for column in ("resource_id", "requester_id", "provider_id", "status", "respond_by", "grant_id"):
        op.create_index(f"ix_share_requests_{column}", "share_requests", [column])


def downgrade() -> None:
    op.drop_table("share_requests")
