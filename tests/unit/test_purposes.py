"""The purpose vocabulary ships as data: unique codes, both labels, DPV IRIs where given."""

from __future__ import annotations

import pytest

from ledger import purposes
from ledger.errors import InvalidInput


def test_vocabulary_is_well_formed() -> None:
    vocab = purposes.vocabulary()
    codes = [p.code for p in vocab]
    assert len(codes) == len(set(codes)) >= 10
    for p in vocab:
        assert p.label_zh and p.label_en and p.code.isascii()
        assert p.dpv is None or p.dpv.startswith("https://w3id.org/dpv#")
    assert sum(p.dpv is not None for p in vocab) >= len(vocab) - 3


def test_hash_binds_code_and_text() -> None:
    a = purposes.purpose_hash("social_assistance", "低保资格复核")
    assert len(a) == 32
    assert a != purposes.purpose_hash("social_assistance", "低保资格复核 ")
    assert a != purposes.purpose_hash("public_service", "低保资格复核")
    with pytest.raises(InvalidInput) as info:
        purposes.purpose_hash("espionage", "x")
    assert info.value.code == "unknown_purpose"
