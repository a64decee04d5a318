"""Browser fixtures: Debian's Chromium driven by Playwright against the real app served over HTTP.

The world is the demo city (:func:`ledger.demo.seed`: Guiyang's departments, the operator, an
enterprise, the regulator, catalog entries, grants and anchored accesses) plus a share request
waiting for 贵阳市公安局's answer and two accesses by the enterprise under an open contract — on
the real embedded chain and SQLite, served by uvicorn in a thread (tests/support/live.py).

Screenshots go to ``$SHARETRAIL_ARTIFACTS`` (default ``test-artifacts/``, git-ignored), under
``browser/``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from api.app import create_app
from api.console.render import STATIC
from ledger.demo import seed
from ledger.runtime import Ledger
from ledger.settings import Settings
from tests.browser.chromium import ARGS, report_missing, require_chromium
from tests.browser.world import ConsoleWorld, extend, tokens_of
from tests.support.ci import unavailable
from tests.support.live import serve

ROOT = Path(__file__).resolve().parents[2]
VENDOR = ("vendor/htmx.min.js", "vendor/echarts.min.js")
TIMEOUT_MS = 20_000


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    report_missing(terminalreporter)


@pytest.fixture(scope="session")
def chromium() -> Path:
    return require_chromium()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    base = Path(os.environ.get("SHARETRAIL_ARTIFACTS") or ROOT / "test-artifacts")
    out = base / "browser"
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture(scope="session")
def vendored() -> None:
    missing = [name for name in VENDOR if not (STATIC / name).is_file()]
    if missing:
        unavailable(
            f"BROWSER NOT TESTED: console files missing ({', '.join(missing)}); run scripts/setup",
            "the browser tests are mandatory when CI=true",
        )


@pytest.fixture(scope="session")
def console_world(
    tmp_path_factory: pytest.TempPathFactory, chromium: Path, vendored: None
) -> Iterator[ConsoleWorld]:
    tmp = tmp_path_factory.mktemp("console")
    settings = Settings(data_dir=tmp / "data", anchor_loop=False)
    with Ledger.open(settings) as ledger:
        tokens = tokens_of(list(seed(ledger)))
        ids = {key: ledger.parties.authenticate(token).id for key, token in tokens.items()}
        request_id, accesses = extend(ledger, ids)
        with serve(create_app(settings, ledger=ledger)) as url:
            yield ConsoleWorld(
                url=url,
                ledger=ledger,
                tokens=tokens,
                ids=ids,
                pending_request=request_id,
                enterprise_accesses=accesses,
            )


@pytest.fixture(scope="package")  # closed after tests/browser: its event loop would break asyncio.run() later
def playwright_driver() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def browser(playwright_driver: Playwright, chromium: Path) -> Iterator[Browser]:
    launched = playwright_driver.chromium.launch(executable_path=str(chromium), args=ARGS, headless=True)
    try:
        yield launched
    finally:
        launched.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    opened = browser.new_context(
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
        viewport={"width": 1400, "height": 900},
        accept_downloads=True,
    )
    opened.set_default_timeout(TIMEOUT_MS)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()
