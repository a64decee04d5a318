"""docs/deploy.md names only settings that exist, and every one of them (an operator copies it)."""

from __future__ import annotations

import re
from pathlib import Path

from ledger.settings import Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"


def test_deploy_doc_names_exactly_the_real_settings() -> None:
    named = set(re.findall(r"SHARETRAIL_[A-Z_]*[A-Z]", DOC.read_text(encoding="utf-8")))
    real = {f"SHARETRAIL_{name.upper()}" for name in Settings.model_fields}
    assert named - real == set(), "named in docs/deploy.md but not a setting"
    assert real - named == set(), "a setting docs/deploy.md does not mention"
