"""Which parameters of an access apply to which mode — and the refusal of the others.

The mode is fixed by the grant (or the open contract, or the open-data defaults), not chosen by the
caller (docs/gateway.md, "An access", step 3). A parameter of another mode used to be dropped
silently: ``subjects=`` on a ``raw`` grant returned every row while the caller believed it had
filtered them. A request is answered as asked or refused, so a parameter that the mode does not
read is a 422 ``parameter_not_applicable`` naming the parameter and the mode. It is an input error
and asks for nothing beyond the grant, so it is not logged as a denial.

This module is pure: no I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ledger.errors import InvalidInput
from ledger.log.events import AccessMode

if TYPE_CHECKING:
    from ledger.gateway.service import AccessRequest

__all__ = ["APPLICABLE", "check_applicable", "given_parameters"]

_ROWS = ("fields", "filter", "limit", "format")
APPLICABLE: dict[AccessMode, tuple[str, ...]] = {
    AccessMode.RAW: _ROWS,
    AccessMode.MASKED: _ROWS,
    AccessMode.AGGREGATE: ("filter", "group_by", "metrics"),
    AccessMode.VERIFY: ("filter", "subjects", "key"),
}
"""The mode-specific parameters each mode reads. ``grant``, ``contract`` and ``purpose`` name the
terms rather than shape the result and are checked against them (``ledger.gateway.service``)."""


def given_parameters(req: AccessRequest) -> list[str]:
    """The mode-specific parameters ``req`` sets (an empty list counts as not given)."""
    given = {
        "fields": req.fields is not None,
        "filter": bool(req.row_filter),
        "limit": req.limit is not None,
        "format": req.stream,
        "group_by": bool(req.group_by),
        "metrics": bool(req.metrics),
        "subjects": bool(req.subjects),
        "key": req.key is not None,
    }
    return [name for name, set_ in given.items() if set_]


def check_applicable(req: AccessRequest, mode: AccessMode, source: str) -> None:
    """Refuse the parameters of ``req`` that ``mode`` does not read; ``source`` says where the mode
    comes from ("the grant's mode", …) for the message.

    Streaming (``format=ndjson`` or ``Accept: application/x-ndjson``) keeps its own code,
    ``stream_not_supported``: an aggregate or a verification is one JSON document, not rows."""
    if req.stream and mode in (AccessMode.AGGREGATE, AccessMode.VERIFY):
        raise InvalidInput(
            f"NDJSON streaming (format=ndjson or Accept: application/x-ndjson) is for raw and masked "
            f"rows; {_a(mode)} access ({source}) is one JSON document",
            code="stream_not_supported",
            mode=mode.value,
        )
    takes = APPLICABLE[mode]
    extra = [name for name in given_parameters(req) if name not in takes]
    if extra:
        named = ", ".join(extra)
        raise InvalidInput(
            f"{named} {'does' if len(extra) == 1 else 'do'} not apply to {_a(mode)} access "
            f"({source}); {_a(mode)} access takes {', '.join(takes)}",
            code="parameter_not_applicable",
            parameters=extra,
            mode=mode.value,
        )


def _a(mode: AccessMode) -> str:
    return f"{'an' if mode.value[0] in 'aeiou' else 'a'} {mode.value}"
