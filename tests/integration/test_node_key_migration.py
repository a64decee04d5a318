"""Migration 0013 rewrites ``log_nodes`` from ``level << 48 | index`` to tile-ordered keys — the
SQL arithmetic against ``ledger/log/layout.py``, on SQLite and PostgreSQL, up and down."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import Engine, text

from ledger.log import layout
from ledger.store.db import make_engine
from tests.support.migrations import alembic_to


def _nodes(engine: Engine) -> list[tuple[int, bytes]]:
    with engine.connect() as conn:
        return [
            (int(k), bytes(h)) for k, h in conn.execute(text("SELECT id, hash FROM log_nodes ORDER BY id"))
        ]


def test_0013_rewrites_every_key_and_keeps_every_hash(db_url: str) -> None:
    rng = random.Random(13)
    nodes = {(0, i) for i in range(1500)} | {
        (lv, rng.randrange(1 << (40 - lv))) for lv in range(40) for _ in range(30)
    }
    nodes |= {(lv, 0) for lv in range(48)} | {(0, (1 << 40) - 1), (7, 255), (8, 3), (15, 1), (16, 0)}
    hashes = {node: rng.randbytes(32) for node in nodes}
    engine = make_engine(db_url)
    try:
        alembic_to(engine, "0012")
        with engine.begin() as conn:
            conn.execute(
                text("INSERT INTO log_nodes (id, hash) VALUES (:id, :hash)"),
                [{"id": layout.legacy_key(*n), "hash": h} for n, h in hashes.items()],
            )
        alembic_to(engine, "0013")
        assert _nodes(engine) == sorted((layout.node_key(*n), h) for n, h in hashes.items())
        with pytest.raises(Exception, match="append-only"), engine.begin() as conn:
            conn.execute(text("DELETE FROM log_nodes"))
        alembic_to(engine, "0012", down=True)
        assert _nodes(engine) == sorted((layout.legacy_key(*n), h) for n, h in hashes.items())
        with pytest.raises(Exception, match="append-only"), engine.begin() as conn:
            conn.execute(text("UPDATE log_nodes SET hash = hash"))
    finally:
        engine.dispose()
