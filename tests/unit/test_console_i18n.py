"""The console's message catalogs: the same keys in both languages, every key the templates use, and
a message for every value of each enum a template turns into a key (``'event.' ~ kind``)."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest

from api.console.i18n import CATALOGS, EN, ZH, translator
from ledger.audit.alerts import Severity
from ledger.audit.console_queries import Page
from ledger.audit.lineage import EdgeKind, NodeKind
from ledger.log.events import AccessMode, EventKind
from ledger.types import OpenType, PartyKind, ShareType

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "api" / "console" / "templates"
CODE = [
    ROOT / "api" / "console" / "render.py",
    ROOT / "api" / "console" / "charts.py",
    ROOT / "api" / "routes" / "console.py",
]
LITERAL_KEY = re.compile(r"""\bt\(\s*['"]([a-z_]+(?:\.[a-z_0-9]+)+)['"]""")
DEFAULT_KEY = re.compile(r"""default=['"]([a-z_.]+)['"]""")


def test_both_catalogs_have_the_same_keys() -> None:
    assert set(ZH) == set(EN), {"only zh": sorted(set(ZH) - set(EN)), "only en": sorted(set(EN) - set(ZH))}


@pytest.mark.parametrize("lang", sorted(CATALOGS))
def test_no_message_is_empty_and_placeholders_match(lang: str) -> None:
    def fields(text: str) -> set[str]:
        return {name for _, name, _, _ in string.Formatter().parse(text) if name}

    for key, text in CATALOGS[lang].items():
        assert text.strip(), f"{lang}:{key} is empty"
        assert fields(text) == fields(ZH[key]), f"{lang}:{key} placeholders differ from zh"


def test_every_literal_key_used_exists() -> None:
    sources = [*TEMPLATES.glob("*.html"), *CODE]
    used = {key for path in sources for key in LITERAL_KEY.findall(path.read_text(encoding="utf-8"))}
    used |= {key for path in sources for key in DEFAULT_KEY.findall(path.read_text(encoding="utf-8"))}
    assert len(used) > 100
    assert not sorted(used - set(ZH)), "keys used but missing from the catalog"


def _alert_rules() -> set[str]:
    source = (ROOT / "ledger" / "audit" / "alerts.py").read_text(encoding="utf-8")
    return set(re.findall(r'rule="([a-z_]+)"', source)) | set(re.findall(r"^- ``([a-z_]+)``", source, re.M))


@pytest.mark.parametrize(
    ("prefix", "values"),
    [
        ("nav", [p.value for p in Page if p is not Page.BUNDLE]),
        ("kind", [k.value for k in PartyKind]),
        ("mode", [m.value for m in AccessMode]),
        ("event", [k.value for k in EventKind]),
        ("share", [s.value for s in ShareType]),
        ("open", [o.value for o in OpenType]),
        ("severity", [s.value for s in Severity]),
        ("lineage", [n.value for n in NodeKind]),
        ("edge", [e.value for e in EdgeKind]),
        ("grant.state", ["active", "revoked", "expired"]),
        ("decided", ["granted", "rejected", "awaiting_cosign"]),
        ("rule", sorted(_alert_rules())),
    ],
)
def test_every_enum_value_has_a_message(prefix: str, values: list[str]) -> None:
    assert values
    missing = [v for v in values if f"{prefix}.{v}" not in ZH]
    assert not missing, f"{prefix}: {missing}"


def test_translator_formats_falls_back_and_shows_unknown_keys() -> None:
    zh, en = translator("zh"), translator("en")
    assert zh("countdown.left", n=3) == "剩余 3 个工作日"
    assert en("countdown.left", n=3) == "3 working days left"
    assert zh("event.nonsense", default="event.other") == "其他"
    assert en("no.such.key") == "no.such.key"
    assert translator("fr")("logout") == ZH["logout"]  # an unknown language falls back to zh-CN
