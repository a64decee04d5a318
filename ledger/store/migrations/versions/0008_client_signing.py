"""client-mode signing for every consent: pending EIP-712 documents of catalog versions,
co-signatures, revocations and disputes; a dispute awaiting its filer's signature has no tx yet

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN: none of these tables carries triggers, but nothing needs a table copy either.
    op.add_column("resources", sa.Column("pending_json", sa.Text(), nullable=True))
    op.add_column("share_requests", sa.Column("cosign_pending_json", sa.Text(), nullable=True))
    op.add_column("share_requests", sa.Column("revoke_pending_json", sa.Text(), nullable=True))
    op.add_column("disputes", sa.Column("file_typed_data", sa.Text(), nullable=True))
    op.add_column("disputes", sa.Column("answer_pending_json", sa.Text(), nullable=True))
    with op.batch_alter_table("disputes") as batch:  # SQLite: table copy; PostgreSQL: ALTER COLUMN
        batch.alter_column("file_tx", existing_type=sa.String(66), nullable=True)
        # "awaiting_signature" is longer than the 16 characters of 0006
        batch.alter_column("status", existing_type=sa.String(16), type_=sa.String(32))


def downgrade() -> None:
    with op.batch_alter_table("disputes") as batch:
        batch.alter_column("file_tx", existing_type=sa.String(66), nullable=False)
        batch.alter_column("status", existing_type=sa.String(32), type_=sa.String(16))
    op.drop_column("disputes", "answer_pending_json")
    op.drop_column("disputes", "file_typed_data")
    op.drop_column("share_requests", "revoke_pending_json")
    op.drop_column("share_requests", "cosign_pending_json")
    op.drop_column("resources", "pending_json")
