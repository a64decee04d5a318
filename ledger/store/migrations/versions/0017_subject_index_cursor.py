"""log_subject_cursor: the data-subject index is filled from the log by a cursor, off the append

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-24

Until now every append wrote its entries' ``(keyed subject hash, log index)`` rows into
``log_subjects`` in the same transaction. That B-tree is keyed by the hash, so a gateway access of
1,000 people dirtied ~1,000 scattered pages per commit — most of the access's cost, growing with
the index (docs/benchmarks.md, the gateway section). The rows are now added in large sorted
batches by a background indexer (``ledger.log.subject_index``) that reads the subjects each entry
carries inline and moves this cursor in the same transaction; readers take the entries at or past
the cursor from the log itself. Everything already in the log was indexed by the old append, so
the cursor starts at the log's size.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

_SUBJECT = re.compile(r"^0x[0-9a-f]{64}$")  # a keyed subject hash, as the log carries it


def upgrade() -> None:
    cursor = op.create_table(
        "log_subject_cursor",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("next_index", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    size = op.get_bind().scalar(sa.text("SELECT size FROM log_head WHERE id = 1"))
    op.bulk_insert(cursor, [{"id": 1, "next_index": int(size or 0), "updated_at": datetime.now(UTC)}])


def downgrade() -> None:
    """The old append indexed every entry itself: index the entries past the cursor here (as the
    indexer would have), so the old code's tracker misses none of them."""
    bind = op.get_bind()
    at = bind.scalar(sa.text("SELECT next_index FROM log_subject_cursor WHERE id = 1")) or 0
    rows = bind.execute(sa.text("SELECT idx, entry FROM log_entries WHERE idx >= :at"), {"at": at})
    found: set[tuple[bytes, int]] = set()
    for idx, entry in rows:
        try:
            event = json.loads(bytes(entry))
        except ValueError:
            continue
        subjects = event.get("subjects") if isinstance(event, dict) else None
        if isinstance(subjects, list):
            found.update(
                (bytes.fromhex(s[2:]), int(idx)) for s in subjects if isinstance(s, str) and _SUBJECT.match(s)
            )
    existing = set()
    if found:
        existing = {
            (bytes(h), int(i))
            for h, i in bind.execute(
                sa.text("SELECT subject_hash, idx FROM log_subjects WHERE idx >= :at"), {"at": at}
            )
        }
    table = sa.table(
        "log_subjects", sa.column("subject_hash", sa.LargeBinary), sa.column("idx", sa.BigInteger)
    )
    fresh = sorted(found - existing)
    if fresh:
        op.bulk_insert(table, [{"subject_hash": h, "idx": i} for h, i in fresh])
    op.drop_table("log_subject_cursor")
