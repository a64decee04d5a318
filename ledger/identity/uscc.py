"""Unified social credit code (统一社会信用代码) per GB 32100-2015.

Every party on the ledger (department, enterprise, operator, regulator) is identified by its
unified social credit code, so a typo must be caught before it is signed into a grant or written
on chain, where it can never be corrected. GB 32100-2015 §4 fixes the structure:

====== ==========================================================================
pos    meaning
====== ==========================================================================
1      registration authority code (登记管理部门代码), e.g. 1 机构编制, 5 民政, 9 工商
2      entity type code (机构类别代码), e.g. 11 机关, 12 事业单位, 91 企业
3–8    administrative division code of the registering authority (GB/T 2260, digits)
9–17   organization code (组织机构代码, GB 11714-1997), whose own check char is pos 17
18     check character (校验码), GB 32100-2015 §5 (ISO 7064 style, modulus 31)
====== ==========================================================================

Positions 1 and 2 are only checked against the character set: the table of authority and type
codes has been extended by later notices (司法行政, 宗教, 工会, 农业集体经济组织 …), and a
hard-coded copy would reject legitimate codes; both check characters cover typos there anyway.

This module is pure: no I/O, no clock. Because every weight is non-zero modulo the (prime)
modulus of each scheme, any single-character substitution changes the weighted sum and is
always detected.
"""

from __future__ import annotations

import unicodedata

from ledger.errors import InvalidInput

__all__ = [
    "MAX_SEQ",
    "USCC_CHARSET",
    "make_uscc",
    "org_code_check_char",
    "uscc_check_char",
    "validate_uscc",
]

#: GB 32100-2015 §4.1: the 31 characters a code may use — digits and capital letters except
#: I, O, S, V, Z (too easily confused with 1, 0, 5, U, 2). A character's value is its index.
USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_VALUE = {ch: i for i, ch in enumerate(USCC_CHARSET)}

#: GB 32100-2015 §5: weight of position i is 3**(i-1) mod 31.
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)

#: GB 11714-1997 §5: weights of the eight body characters of an organization code.
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)

_LENGTH = 18
_CODE = "invalid_uscc"


def _org_value(ch: str) -> int:
    """GB 11714 values: digits are themselves, letters A..Z are 10..35 (the full alphabet)."""
    return int(ch) if ch.isdigit() else ord(ch) - ord("A") + 10


def org_code_check_char(body8: str) -> str:
    """The GB 11714-1997 check character for the 8-character organization code body.

    check = 11 - (Σ value·weight mod 11); 10 is written ``X`` and 11 is written ``0``.
    """
    if len(body8) != 8 or any(ch not in _VALUE for ch in body8):
        raise InvalidInput(
            f"organization code body must be 8 characters of {USCC_CHARSET}, got {body8!r}",
            code=_CODE,
        )
    check = 11 - sum(_org_value(ch) * w for ch, w in zip(body8, _ORG_WEIGHTS, strict=True)) % 11
    if check == 10:
        return "X"
    if check == 11:
        return "0"
    return str(check)


def uscc_check_char(first17: str) -> str:
    """The GB 32100-2015 §5 check character (position 18) for the first 17 characters.

    check = 31 - (Σ value·weight mod 31), with 31 written as ``0``; the number maps back to
    :data:`USCC_CHARSET`.
    """
    if len(first17) != 17:
        raise InvalidInput(
            f"need the first 17 characters of a USCC, got {len(first17)}", code=_CODE, length=len(first17)
        )
    for pos, ch in enumerate(first17, start=1):
        if ch not in _VALUE:
            raise _bad_char(ch, pos)
    check = 31 - sum(_VALUE[ch] * w for ch, w in zip(first17, _USCC_WEIGHTS, strict=True)) % 31
    return USCC_CHARSET[0 if check == 31 else check]


def _bad_char(ch: str, pos: int) -> InvalidInput:
    return InvalidInput(
        f"USCC has bad character {ch!r} at position {pos}: only 0-9 and A-Y without I, O, S, V, Z "
        "are allowed (GB 32100-2015 §4.1)",
        code=_CODE,
        position=pos,
        character=ch,
    )


def _normalise(code: str) -> str:
    # Full-width digits and letters (９１３５…) are common in Chinese input methods; NFKC folds
    # them to ASCII. Lower case is accepted and upper-cased, surrounding blanks are dropped.
    return unicodedata.normalize("NFKC", code).strip().upper()


def validate_uscc(code: str) -> str:
    """Return ``code`` normalised (NFKC, stripped, upper case) if it is a valid USCC.

    Raises :class:`~ledger.errors.InvalidInput` with ``code="invalid_uscc"`` and a message
    naming the first problem found, in this order: type, length (18), a character outside the
    charset (with its 1-based position), a non-digit in the division code (positions 3–8),
    a wrong organization-code check character (position 17, GB 11714), a wrong check
    character (position 18, GB 32100). ``details`` carry ``position`` / ``expected``.
    """
    if not isinstance(code, str):
        raise InvalidInput(f"USCC must be a string, got {type(code).__name__}", code=_CODE)
    norm = _normalise(code)
    if len(norm) != _LENGTH:
        raise InvalidInput(
            f"USCC must be exactly 18 characters, got {len(norm)}", code=_CODE, length=len(norm)
        )
    for pos, ch in enumerate(norm, start=1):
        if ch not in _VALUE:
            raise _bad_char(ch, pos)
    for pos in range(3, 9):
        ch = norm[pos - 1]
        if not ch.isdigit():
            raise InvalidInput(
                f"USCC has bad character {ch!r} at position {pos}: positions 3-8 are the "
                "administrative division code and must be digits (GB/T 2260)",
                code=_CODE,
                position=pos,
                character=ch,
            )
    org_expected = org_code_check_char(norm[8:16])
    if norm[16] != org_expected:
        raise InvalidInput(
            f"USCC has bad organization code check character at position 17: expected "
            f"{org_expected}, got {norm[16]} (GB 11714-1997)",
            code=_CODE,
            position=17,
            expected=org_expected,
            actual=norm[16],
        )
    expected = uscc_check_char(norm[:17])
    if norm[17] != expected:
        raise InvalidInput(
            f"USCC has bad check character at position 18: expected {expected}, got {norm[17]} "
            "(GB 32100-2015 §5)",
            code=_CODE,
            position=18,
            expected=expected,
            actual=norm[17],
        )
    return norm


#: Largest sequence number :func:`make_uscc` accepts (8 decimal digits of organization code body).
MAX_SEQ = 99_999_999


def make_uscc(seq: int, *, division: str = "520100", authority: str = "1", kind: str = "1") -> str:
    """A valid USCC derived deterministically from ``seq``, for demo data and tests.

    The organization code body is ``seq`` as 8 zero-padded decimal digits, followed by its
    GB 11714 check character and the GB 32100 check character; so ``make_uscc(2)`` is
    ``"11520100000000027J"`` (a 机关 registered in Guiyang, 520100). These codes are
    syntactically valid but not issued to anyone.
    """
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= MAX_SEQ:
        raise InvalidInput(f"seq must be an int in 0..{MAX_SEQ}, got {seq!r}", code=_CODE)
    if len(division) != 6 or not division.isascii() or not division.isdigit():
        raise InvalidInput(f"division must be 6 digits (GB/T 2260), got {division!r}", code=_CODE)
    for name, value in (("authority", authority), ("kind", kind)):
        if len(value) != 1 or value not in _VALUE:
            raise InvalidInput(f"{name} must be one character of {USCC_CHARSET}, got {value!r}", code=_CODE)
    body = f"{seq:08d}"
    first17 = authority + kind + division + body + org_code_check_char(body)
    return first17 + uscc_check_char(first17)
