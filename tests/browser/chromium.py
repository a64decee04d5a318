"""Debian's Chromium for the browser tests — never Playwright's own browser download (it fails here).

Where it comes from, in order:

1. ``/usr/bin/chromium`` (Debian's ``chromium`` package), with a CJK font so that Chinese renders as
   text and not as empty boxes (Debian ``fonts-wqy-zenhei``, or any font ``fc-list :lang=zh`` finds).
2. With ``CI=true`` and as root: ``apt-get install -y chromium fonts-wqy-zenhei``, tried once per
   test process (the pattern of tests/support/postgres.py).

If neither works: with ``CI=true`` the browser tests **fail**; otherwise they are skipped with a loud
"BROWSER NOT TESTED" reason, repeated in the terminal summary by :func:`report_missing`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.ci import in_ci, unavailable

CHROMIUM = Path("/usr/bin/chromium")
PACKAGES = ("chromium", "fonts-wqy-zenhei")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class _State:
    tried: bool = False
    missing: str | None = None


_STATE = _State()


def has_cjk_font() -> bool:
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return False
    try:
        done = subprocess.run(
            [fc_list, ":lang=zh", "family"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return bool(done.stdout.strip())


def _apt_install() -> str | None:
    """Install Chromium and a CJK font with apt (root, CI only). Returns an error text or None."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *PACKAGES]):
        try:
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"{' '.join(cmd)}: {exc}"
        if done.returncode != 0:
            return f"{' '.join(cmd)} exited {done.returncode}: {done.stderr.strip()[-500:]}"
    return None


def _problem() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install {' '.join(PACKAGES)})"
    if not has_cjk_font():
        return "no CJK font: Chinese would render as empty boxes (apt-get install fonts-wqy-zenhei)"
    return None


def ensure_chromium() -> str | None:
    """Why the browser tests cannot run (``None`` when they can); installs in CI as root, once."""
    if not _STATE.tried:
        _STATE.tried = True
        problem = _problem()
        if problem is not None and in_ci() and os.geteuid() == 0:
            failed = _apt_install()
            problem = _problem() if failed is None else f"{problem}; apt-get failed: {failed}"
        _STATE.missing = problem
    return _STATE.missing


def require_chromium() -> Path:
    """The Chromium binary, or fail (``CI=true``) / skip loudly (elsewhere)."""
    problem = ensure_chromium()
    if problem is None:
        return CHROMIUM
    unavailable(f"BROWSER NOT TESTED: {problem}", "the browser tests are mandatory when CI=true")


def report_missing(terminalreporter: pytest.TerminalReporter) -> None:
    """For ``pytest_terminal_summary``: shout if the browser tests were skipped."""
    if _STATE.missing is None:
        return
    terminalreporter.section("BROWSER NOT TESTED", sep="!", red=True, bold=True)
    terminalreporter.write_line(f"BROWSER NOT TESTED: {_STATE.missing}", red=True, bold=True)
