"""The store on SQLite and PostgreSQL: migrations, durability settings, keys encrypted at rest."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from pydantic import ValidationError
from sqlalchemy import inspect, text

from api.cli import SIM_SQLITE_CACHE_MIB
from ledger.errors import VerificationError
from ledger.identity.vault import KeyVault
from ledger.runtime import Ledger
from ledger.settings import Settings
from ledger.sim.run import SimOptions
from ledger.store.db import Store
from ledger.store.models import Base, Party, PlatformKey


def test_migrations_apply_twice_and_match_models(db_url: str) -> None:
    store = Store(db_url)
    store.migrate()
    store.migrate()  # idempotent on every start
    tables = set(inspect(store.engine).get_table_names())
    assert {"parties", "platform_keys", "chain_contracts", "alembic_version"} <= tables
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"models and migrations disagree: {diff}"
    store.close()


def test_sqlite_durability_pragmas(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'x.sqlite'}")
    with store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
        assert conn.execute(text("PRAGMA cache_size")).scalar() == -256 * 1024  # KiB when negative
        assert conn.execute(text("PRAGMA wal_autocheckpoint")).scalar() == 100_000
    store.close()


def test_the_sqlite_page_cache_follows_the_setting(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, sqlite_cache_mib=3)
    store = Store(settings.database_url, sqlite_cache_mib=settings.sqlite_cache_mib)
    with store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA cache_size")).scalar() == -3 * 1024
    store.close()
    with pytest.raises(ValidationError, match="sqlite_cache_mib"):
        Settings(data_dir=tmp_path, sqlite_cache_mib=1)
    assert SimOptions(data_dir=tmp_path).sqlite_cache_mib == SIM_SQLITE_CACHE_MIB  # the CLI's default


def test_private_keys_are_encrypted_at_rest(ledger: Ledger) -> None:
    registrar = ledger.parties.get(ledger.bootstrap.registrar_id)
    key = bytes(ledger.parties.signer(registrar).key)
    with ledger.store.session() as session:
        row = session.get(Party, registrar.id)
        assert row is not None and row.key_ciphertext is not None
        assert key not in row.key_ciphertext and key.hex().encode() not in row.key_ciphertext
        for platform in session.query(PlatformKey):
            assert len(platform.ciphertext) == 12 + 32 + 16
    mode = (ledger.settings.data_dir / "master.key").stat().st_mode & 0o777
    assert mode == 0o600


def test_vault_binds_ciphertext_to_its_owner(tmp_path: Path) -> None:
    vault = KeyVault.for_data_dir(tmp_path)
    account, sealed = vault.new_account("party-a")
    assert vault.account(sealed, "party-a").address == account.address
    with pytest.raises(VerificationError) as info:
        vault.open(sealed, "party-b")
    assert info.value.code == "key_decrypt_failed"
    with pytest.raises(VerificationError):
        KeyVault.for_data_dir(tmp_path / "other").open(sealed, "party-a")
