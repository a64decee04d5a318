"""log_nodes keyed by tile: ``L << 56 | tile << 9 | position`` instead of ``level << 48 | index``

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-24

An inclusion proof takes one node from each level. Keyed by level, those nodes lay in as many
separate regions of the B-tree as the tree has levels, so a proof on a large log whose pages were
not cached read 6–8 scattered pages (10M leaves: p50 2.0 ms, p90 12 ms). Keyed by tile (C2SP
tlog-tiles' cut: height 8, ``ledger/log/layout.py``) the eight lowest nodes of a proof share one
tile's key range. Only the keys change: every hash stays, and the table is rewritten in key order
(a copy, so the append-only triggers are created again on the new table).

The key arithmetic below is ``layout.node_key`` / ``layout.key_node`` in SQL; the migration test
(tests/integration/test_node_key_migration.py) checks it against them on both backends.
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_INDEX_MASK = (1 << 48) - 1
_TILE_MASK = (1 << 47) - 1

# From (lv, ix) = the legacy key's level and index to the tile key. Every operator parenthesised:
# PostgreSQL gives <<, >>, & and | one precedence, SQLite another.
_TO_TILE = (
    "(((lv / 8) << 56) | ((ix >> CAST(8 - (lv % 8) AS INTEGER)) << 9)"
    " | ((512 - (1 << CAST(9 - (lv % 8) AS INTEGER))) + (ix & ((1 << CAST(8 - (lv % 8) AS INTEGER)) - 1))))"
)
# The level within its tile from a position 0…509 (0…255 → 0, 256…383 → 1, … 508…509 → 7).
_IN_TILE = (
    "CASE WHEN pos < 256 THEN 0 WHEN pos < 384 THEN 1 WHEN pos < 448 THEN 2 WHEN pos < 480 THEN 3"
    " WHEN pos < 496 THEN 4 WHEN pos < 504 THEN 5 WHEN pos < 508 THEN 6 ELSE 7 END"
)


def _rewrite(select_key: str, source: str) -> None:
    bind = op.get_bind()
    big = "INTEGER" if bind.dialect.name == "sqlite" else "BIGINT"
    blob = "BLOB" if bind.dialect.name == "sqlite" else "BYTEA"
    op.execute(f"CREATE TABLE log_nodes_new (id {big} NOT NULL PRIMARY KEY, hash {blob} NOT NULL)")
    op.execute(
        f"INSERT INTO log_nodes_new (id, hash) "
        f"SELECT {select_key} AS id, hash FROM ({source}) AS s ORDER BY 1"
    )
    op.execute("DROP TABLE log_nodes")
    op.execute("ALTER TABLE log_nodes_new RENAME TO log_nodes")
    if bind.dialect.name == "sqlite":
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER log_nodes_no_{action.lower()} BEFORE {action} ON log_nodes "
                "BEGIN SELECT RAISE(ABORT, 'log_nodes is append-only'); END"
            )
    elif bind.dialect.name == "postgresql":
        op.execute("ALTER INDEX log_nodes_new_pkey RENAME TO log_nodes_pkey")
        op.execute(
            "CREATE TRIGGER log_nodes_append_only BEFORE UPDATE OR DELETE ON log_nodes "
            "FOR EACH ROW EXECUTE FUNCTION sharetrail_append_only()"
        )


def upgrade() -> None:
    _rewrite(_TO_TILE, f"SELECT (id >> 48) AS lv, (id & {_INDEX_MASK}) AS ix, hash FROM log_nodes")


def downgrade() -> None:
    in_tile = f"SELECT tl, tile, pos, {_IN_TILE} AS lt, hash FROM ({{inner}}) AS p"
    inner = (
        f"SELECT (id >> 56) AS tl, ((id >> 9) & {_TILE_MASK}) AS tile, (id & 511) AS pos, hash FROM log_nodes"
    )
    legacy = (
        "((((tl * 8) + lt) << 48) | ((tile << CAST(8 - lt AS INTEGER))"
        " | (pos - (512 - (1 << CAST(9 - lt AS INTEGER))))))"
    )
    _rewrite(legacy, in_tile.format(inner=inner))
