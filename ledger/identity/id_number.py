"""Citizen identity number (公民身份号码) per GB 11643-1999.

Data subjects ask the ledger which parties accessed data about them (the data tracker), and
``verify``-mode requests (核验) check an identity number against a source. A mistyped number
would silently match nobody — or somebody else — so it is rejected before it is hashed or used.

GB 11643-1999 §4–§7 fixes the 18-character structure:

======= ======================================================================
pos     meaning
======= ======================================================================
1–6     address code: administrative division of permanent residence (GB/T 2260)
7–14    date of birth, YYYYMMDD (GB/T 7408)
15–17   sequence code; odd for men, even for women (§7.3)
18      check character, ISO 7064:1983 MOD 11-2 (§7.4); value 10 is written ``X``
======= ======================================================================

The division code is only checked to be six digits: GB/T 2260 changes every year and old
numbers keep their old codes, so a table would reject valid numbers. 15-digit first-generation
numbers are not accepted.

This module is pure: no I/O. The only clock read is ``date.today()`` when the caller gives no
``today``. Every MOD 11-2 weight (2**(18-i) mod 11) is non-zero modulo the prime 11, so any
single-character substitution is always detected.
"""

from __future__ import annotations

import unicodedata
from datetime import date
from enum import StrEnum

from ledger.errors import InvalidInput

__all__ = [
    "Sex",
    "birth_date",
    "id_check_char",
    "make_id_number",
    "sex",
    "validate_id_number",
]

#: GB 11643-1999 §7.4 weights: W_i = 2**(i-1) mod 11, positions 17 … 1 (left to right below).
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
#: Check character for each value of Σ mod 11.
_CHECK = "10X98765432"
_CODE = "invalid_id_number"
_MIN_YEAR = 1900


class Sex(StrEnum):
    """Sex as encoded by the parity of the sequence code (GB 11643-1999 §7.3)."""

    MALE = "male"
    FEMALE = "female"


def id_check_char(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character for the first 17 digits (GB 11643-1999 §7.4)."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise InvalidInput(f"need the first 17 digits of an identity number, got {first17!r}", code=_CODE)
    return _CHECK[sum(int(ch) * w for ch, w in zip(first17, _WEIGHTS, strict=True)) % 11]


def _normalise(value: str) -> str:
    # NFKC folds full-width digits and ｘ from Chinese input methods; lower-case x is accepted.
    return unicodedata.normalize("NFKC", value).strip().upper()


def validate_id_number(value: str, *, today: date | None = None) -> str:
    """Return the normalised (NFKC, stripped, upper-case ``X``) identity number if valid.

    Raises :class:`~ledger.errors.InvalidInput` with ``code="invalid_id_number"`` naming the
    first problem, in this order: type, length (18), a non-digit at positions 1–17 or a
    position 18 that is neither digit nor ``X`` (with its 1-based position), a birth date that
    is not a calendar date, before 1900 or after ``today`` (default: the local date), and a
    wrong check character (with the expected one).
    """
    if not isinstance(value, str):
        raise InvalidInput(f"identity number must be a string, got {type(value).__name__}", code=_CODE)
    norm = _normalise(value)
    if len(norm) != 18:
        hint = " (15-digit first-generation numbers are not accepted)" if len(norm) == 15 else ""
        raise InvalidInput(
            f"identity number must be exactly 18 characters, got {len(norm)}{hint}",
            code=_CODE,
            length=len(norm),
        )
    for pos, ch in enumerate(norm, start=1):
        if not ("0" <= ch <= "9" or (pos == 18 and ch == "X")):
            allowed = "a digit or X" if pos == 18 else "a digit"
            raise InvalidInput(
                f"identity number has bad character {ch!r} at position {pos}: must be {allowed}",
                code=_CODE,
                position=pos,
                character=ch,
            )
    _check_birth(norm[6:14], today if today is not None else date.today())
    expected = id_check_char(norm[:17])
    if norm[17] != expected:
        raise InvalidInput(
            f"identity number has bad check character at position 18: expected {expected}, "
            f"got {norm[17]} (GB 11643-1999 §7.4)",
            code=_CODE,
            position=18,
            expected=expected,
            actual=norm[17],
        )
    return norm


def _check_birth(yyyymmdd: str, today: date) -> date:
    try:
        born = date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:]))
    except ValueError:
        raise InvalidInput(
            f"identity number has bad birth date {yyyymmdd} at positions 7-14: not a calendar date",
            code=_CODE,
            position=7,
        ) from None
    if born.year < _MIN_YEAR:
        raise InvalidInput(
            f"identity number has bad birth date {yyyymmdd} at positions 7-14: year before {_MIN_YEAR}",
            code=_CODE,
            position=7,
        )
    if born > today:
        raise InvalidInput(
            f"identity number has bad birth date {yyyymmdd} at positions 7-14: in the future "
            f"(today is {today.isoformat()})",
            code=_CODE,
            position=7,
        )
    return born


def birth_date(value: str, *, today: date | None = None) -> date:
    """The date of birth encoded at positions 7–14, after full validation."""
    return _check_birth(validate_id_number(value, today=today)[6:14], date.max)


def sex(value: str, *, today: date | None = None) -> Sex:
    """Sex from the parity of the sequence code (odd = male), after full validation."""
    return Sex.MALE if int(validate_id_number(value, today=today)[16]) % 2 else Sex.FEMALE


def make_id_number(division: str, birth: date, seq: int) -> str:
    """A valid identity number for demo data and tests: ``division``, ``birth``, ``seq`` (0–999).

    Deterministic, so fixtures are reproducible; the numbers are syntactically valid but are
    not known to belong to anyone. Odd ``seq`` gives a man, even a woman.
    """
    if len(division) != 6 or not division.isascii() or not division.isdigit():
        raise InvalidInput(f"division must be 6 digits (GB/T 2260), got {division!r}", code=_CODE)
    if not _MIN_YEAR <= birth.year <= 9999:
        raise InvalidInput(f"birth year must be {_MIN_YEAR} or later, got {birth.year}", code=_CODE)
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= 999:
        raise InvalidInput(f"seq must be an int in 0..999, got {seq!r}", code=_CODE)
    first17 = f"{division}{birth:%Y%m%d}{seq:03d}"
    return first17 + id_check_char(first17)
