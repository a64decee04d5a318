"""One rule for a real component a test needs but this machine lacks (PostgreSQL, Chromium, the
console's vendored files): under ``CI=true`` the test fails, because CI must exercise every
component; on a developer's machine it is skipped with a loud reason, so a partial checkout can
still run the rest of the suite (the terminal summary repeats what was not tested)."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def unavailable(reason: str, mandatory: str) -> NoReturn:
    """Fail under CI (``mandatory`` says what CI requires), skip elsewhere — see the module doc."""
    if in_ci():
        pytest.fail(f"{reason} ({mandatory})", pytrace=False)
    pytest.skip(reason)  # outside CI only: a developer without the component runs the rest
