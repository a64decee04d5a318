"""Checks of the short texts people read on screen: party names, catalog labels (pure; no I/O).

A name or label is shown to a regulator, a department, a citizen — in the console, in CSV exports,
in audit reports. It must therefore be visible and must not rearrange the text around it:

- not empty once whitespace (any Unicode space, the ideographic U+3000 too) is removed;
- no control characters (category Cc: terminal escapes, NUL, line breaks);
- no format characters (Cf): zero-width spaces and joiners, which make two different names
  look the same, and the bidirectional overrides and isolates (U+202A–U+202E, U+2066–U+2069),
  which make a name display other than it reads ("Trojan Source", CVE-2021-42574);
- no surrogates, private-use or unassigned code points (Cs, Co, Cn), which no font shows
  reliably.
"""

from __future__ import annotations

import unicodedata

_REFUSED = {
    "Cc": "control characters",
    "Cf": "invisible formatting characters (zero-width or bidirectional controls)",
    "Cs": "surrogate code points",
    "Co": "private-use characters",
    "Cn": "unassigned code points",
}


def display_text_problem(text: str) -> str | None:
    """Why ``text`` cannot serve as a displayed name or label, or None when it can."""
    if not text.strip() or all(unicodedata.category(ch).startswith("Z") for ch in text):
        return "must not be empty or only whitespace"
    for ch in text:
        what = _REFUSED.get(unicodedata.category(ch))
        if what is not None:
            return f"must not contain {what}: U+{ord(ch):04X} at position {text.index(ch)}"
    return None
