"""Shared fixtures: real SQLite and PostgreSQL stores, a real embedded chain, the real app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ledger.runtime import Ledger
from ledger.settings import Settings
from tests.support.postgres import pg_server_url, pg_url, report_missing  # noqa: F401

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    report_missing(terminalreporter)


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'sharetrail.sqlite'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", db_url=db_url, bootstrap_token="st_bootstrap-registrar-token")


@pytest.fixture
def ledger(settings: Settings) -> Iterator[Ledger]:
    with Ledger.open(settings) as opened:
        yield opened


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def registrar_headers(settings: Settings) -> dict[str, str]:
    return {"Authorization": f"Bearer {settings.bootstrap_token}"}
