"""The controlled vocabulary of purposes (应用需求导向：提出明确的共享需求和数据使用用途).

Shipped as data (``ledger/data/purposes.json``): each code has zh-CN and English labels and, where
one fits, a W3C Data Privacy Vocabulary (DPV) purpose IRI. A request names a code plus free text;
only hashes of them go on chain (:func:`purpose_hash`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from eth_utils.crypto import keccak

from ledger.canonical import canonical_json
from ledger.errors import InvalidInput

DATA = Path(__file__).resolve().parent / "data" / "purposes.json"


@dataclass(frozen=True)
class Purpose:
    code: str
    label_zh: str
    label_en: str
    dpv: str | None


@cache
def vocabulary() -> tuple[Purpose, ...]:
    return tuple(Purpose(**item) for item in json.loads(DATA.read_text(encoding="utf-8")))


def get(code: str) -> Purpose:
    for purpose in vocabulary():
        if purpose.code == code:
            return purpose
    raise InvalidInput(f"unknown purpose code {code!r}; see GET /v1/purposes", code="unknown_purpose")


def purpose_hash(code: str, text: str) -> bytes:
    """keccak256 of the canonical JSON ``{"code", "text"}`` — what goes on chain."""
    get(code)
    return keccak(canonical_json({"code": code, "text": text}))
