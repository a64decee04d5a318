"""Settings come from SHARETRAIL_* environment variables with working defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from ledger.settings import Settings


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("SHARETRAIL_DATA_DIR", "SHARETRAIL_DB_URL", "SHARETRAIL_CHAIN", "SHARETRAIL_BOOTSTRAP_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    s = Settings()
    assert s.data_dir == Path(".sharetrail") and s.is_embedded and s.bootstrap_token is None
    assert s.database_url.startswith("sqlite:///") and s.database_url.endswith(
        ".sharetrail/sharetrail.sqlite"
    )


def test_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SHARETRAIL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SHARETRAIL_DB_URL", "postgresql+psycopg://u@127.0.0.1:5432/st")
    monkeypatch.setenv("SHARETRAIL_CHAIN", "http://127.0.0.1:8545")
    monkeypatch.setenv("SHARETRAIL_BOOTSTRAP_TOKEN", "st_x")
    s = Settings()
    assert s.data_dir == tmp_path and s.database_url.startswith("postgresql+psycopg://")
    assert not s.is_embedded and s.chain == "http://127.0.0.1:8545" and s.bootstrap_token == "st_x"


def test_bad_chain_setting_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHARETRAIL_CHAIN", "ws://node")
    with pytest.raises(ValidationError, match="embedded' or an http"):
        Settings()


def test_onchain_levels(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHARETRAIL_ONCHAIN_LEVELS", "3, 4")
    assert Settings().onchain_level_set == frozenset({3, 4})
    monkeypatch.setenv("SHARETRAIL_ONCHAIN_LEVELS", "")
    assert Settings().onchain_level_set == frozenset()
    monkeypatch.setenv("SHARETRAIL_ONCHAIN_LEVELS", "5")
    with pytest.raises(ValidationError, match="levels 1-4"):
        Settings()
