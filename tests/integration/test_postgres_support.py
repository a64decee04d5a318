"""The PostgreSQL test support really yields a server: fresh databases, SQLAlchemy 2 + psycopg."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.support.postgres import TEST_DB, drop_database, fresh_database, libpq_url, temp_cluster

pytestmark = pytest.mark.postgres


def test_server_url_is_usable_and_recent(pg_server_url: str) -> None:
    engine = create_engine(pg_server_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("select 1")).scalar_one() == 1
            version_num = int(conn.execute(text("show server_version_num")).scalar_one())
            assert version_num >= 150000
            assert conn.execute(text("show server_encoding")).scalar_one() in {"UTF8", "UTF-8"}
            fsync = conn.execute(text("show fsync")).scalar_one()
        if temp_cluster() is not None:
            # Our own throwaway cluster runs without fsync (speed; nothing to keep).
            assert fsync == "off"
            assert make_url(pg_server_url).database == TEST_DB
    finally:
        engine.dispose()


def test_pg_url_is_a_fresh_empty_database(pg_server_url: str, pg_url: str) -> None:
    assert make_url(pg_url).database != make_url(pg_server_url).database
    engine = create_engine(pg_url)
    try:
        with engine.begin() as conn:
            assert conn.execute(text("select current_database()")).scalar_one() == make_url(pg_url).database
            tables = conn.execute(
                text("select count(*) from information_schema.tables where table_schema = 'public'")
            ).scalar_one()
            assert tables == 0
            conn.execute(text("create table party (uscc char(18) primary key, name text not null)"))
            conn.execute(text("insert into party values ('11520100000000027J', '贵阳市民政局')"))
        with engine.connect() as conn:
            assert conn.execute(text("select name from party")).scalar_one() == "贵阳市民政局"
    finally:
        engine.dispose()


def test_fresh_database_is_dropped(pg_server_url: str) -> None:
    url = fresh_database(pg_server_url)
    name = make_url(url).database
    # Drop even while a connection is still open (WITH (FORCE)).
    lingering = psycopg.connect(libpq_url(url))
    try:
        drop_database(pg_server_url, url)
    finally:
        lingering.close()
    with psycopg.connect(libpq_url(pg_server_url)) as conn:
        row = conn.execute("select count(*) from pg_database where datname = %s", (name,)).fetchone()
        assert row == (0,)
