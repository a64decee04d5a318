"""Who takes what, when and how: the skew of a city's data exchanges. Pure (no I/O).

- **Hot resources**: popularity is Zipf-like (weight 1/rank^s, s = :data:`ZIPF_S`) over the shareable
  catalog in a random order, so a few items carry much of the traffic (at Guiyang scale the top 1 % of
  the catalog takes about half of the events).
- **Accessors**: the statistics bureau (贵阳市统计局) weighs twice the next department, which falls off as
  1/rank; the accessor is drawn first, then a resource it does not provide itself.
- **Office hours**: events fall on mainland working days (:mod:`ledger.workdays`: statutory holidays
  and 调休 counted) with a half-hour profile peaking 09:00–12:00 and 13:30–17:30 Asia/Shanghai, a lunch
  dip, and little at night; a non-working day carries :data:`OFF_DAY_WEIGHT` of a working day's traffic.
  Events come out in time order over a period ending ``now`` (a gateway never logs the future).
- **Modes and purposes**: a pair holding a grant uses the grant's purpose, mode and fields; other
  exchanges (authorised by the existing exchange platform) use the accessor's usual purpose most of
  the time, and a mode mix (the statistics bureau mostly aggregates, others mostly verify 核验).
- **Denials**: :data:`DENIED_RATE` of the attempts are refused, with a reason code.
"""

from __future__ import annotations

import random
import warnings
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import accumulate
from typing import NamedTuple

from ledger import workdays
from ledger.log.events import AccessMode
from ledger.sim.city import CHINA_TZ, STATISTICS_BUREAU, Department, ResourcePlan
from ledger.types import ShareType

ZIPF_S = 1.0
STATISTICS_LEAD = 2.0  # the statistics bureau's weight over the next accessor's
DENIED_RATE = 0.02
OFF_DAY_WEIGHT = 0.05
OWN_PURPOSE_RATE = 0.75
DENIAL_REASONS = ("out_of_scope", "grant_expired", "access_cap_reached", "no_grant", "rate_limited")
OTHER_PURPOSES = (
    "public_service",
    "identity_verification",
    "statistics",
    "social_assistance",
    "market_supervision",
    "emergency_response",
)
STATISTICS_MODES = ((AccessMode.AGGREGATE, 0.7), (AccessMode.MASKED, 0.2), (AccessMode.RAW, 0.1))
OTHER_MODES = (
    (AccessMode.VERIFY, 0.4),
    (AccessMode.MASKED, 0.3),
    (AccessMode.RAW, 0.18),
    (AccessMode.AGGREGATE, 0.12),
)
# Relative traffic per half hour of the day, Asia/Shanghai (48 slots from 00:00).
HALF_HOURS: tuple[float, ...] = (
    (0.01,) * 14  # 00:00-07:00
    + (0.1,) * 2  # 07:00-08:00
    + (0.3,) * 2  # 08:00-09:00
    + (1.0,) * 6  # 09:00-12:00
    + (0.35,) * 3  # 12:00-13:30 lunch
    + (1.0,) * 8  # 13:30-17:30
    + (0.25,) * 3  # 17:30-19:00
    + (0.06,) * 6  # 19:00-22:00
    + (0.03,) * 4  # 22:00-24:00
)
OFFICE_START, OFFICE_END = time(9, 0), time(17, 30)
SLOT = timedelta(minutes=30)


class Weighted:
    """Draw an index with probability proportional to its weight (bisect over cumulative sums)."""

    def __init__(self, weights: Sequence[float]) -> None:
        if not weights or min(weights) < 0 or sum(weights) <= 0:
            raise ValueError("weights must be non-negative with a positive sum")
        self.cum = list(accumulate(weights))
        self.total = self.cum[-1]
        self.last = len(self.cum) - 1

    def draw(self, rng: random.Random) -> int:
        index = bisect_right(self.cum, rng.random() * self.total)
        return index if index < self.last else self.last


def zipf_weights(n: int, s: float = ZIPF_S) -> list[float]:
    return [1.0 / (rank**s) for rank in range(1, n + 1)]


def accessor_weights(departments: Sequence[Department]) -> list[float]:
    """1/rank for every department but the statistics bureau, which weighs STATISTICS_LEAD times
    the heaviest of the others."""
    others = [d for d in departments if d.name != STATISTICS_BUREAU]
    rank = {d.seq: r for r, d in enumerate(others, start=1)}
    return [STATISTICS_LEAD if d.name == STATISTICS_BUREAU else 1.0 / rank[d.seq] for d in departments]


def is_office_hours(moment: datetime) -> bool:
    """09:00–17:30 Asia/Shanghai on a mainland working day."""
    local = moment.astimezone(CHINA_TZ)
    return _working(local.date()) and OFFICE_START <= local.time() < OFFICE_END


def _working(day: date) -> bool:
    with warnings.catch_warnings():  # a year past the calendar's notices counts Monday-Friday
        warnings.simplefilter("ignore", workdays.CalendarFallbackWarning)
        return workdays.is_working_day(day)


@dataclass(frozen=True)
class Day:
    start: datetime  # local midnight
    weight: float  # expected share of traffic, before normalising
    slots: int  # half-hour slots open (fewer on the last day: nothing after ``now``)


def calendar(now: datetime, days: int) -> list[Day]:
    """The ``days`` local days ending with today, each with its traffic weight."""
    local_now = now.astimezone(CHINA_TZ)
    today = local_now.date()
    out = []
    for back in range(days - 1, -1, -1):
        day = today - timedelta(days=back)
        start = datetime.combine(day, time(0), CHINA_TZ)
        slots = 48 if back else int((local_now - start) / SLOT)
        share = sum(HALF_HOURS[:slots]) / sum(HALF_HOURS)
        out.append(Day(start, share * (1.0 if _working(day) else OFF_DAY_WEIGHT), slots))
    return out


def per_day(total: int, days: Sequence[Day]) -> list[int]:
    """``total`` events split over the days in proportion to their weights (largest remainder)."""
    weight = sum(d.weight for d in days)
    if weight <= 0:
        if total:
            raise ValueError("the period has no hours before now to place events in")
        return [0] * len(days)
    exact = [total * d.weight / weight for d in days]
    counts = [int(x) for x in exact]
    for i in sorted(range(len(days)), key=lambda i: exact[i] - counts[i], reverse=True)[
        : total - sum(counts)
    ]:
        counts[i] += 1
    return counts


@dataclass(frozen=True)
class GrantTerms:
    purpose: str
    mode: AccessMode
    fields: tuple[str, ...]


@dataclass(frozen=True)
class RequestPlan:
    requester: int  # roster index
    resource: int  # catalog index
    terms: GrantTerms
    approve: bool  # False: the provider rejects it with a reason


class Draft(NamedTuple):
    """One access event, ready to be given ids (party and grant ids come from the ledger)."""

    seq: int
    time: datetime
    accessor: int
    resource: int
    denied_reason: str | None
    purpose: str
    mode: AccessMode
    fields: tuple[str, ...]
    record_count: int
    query_hash: str
    result_hash: str | None


class CityModel:
    """The samplers for one city: accessors, resources, terms, times."""

    def __init__(self, departments: Sequence[Department], catalog: Sequence[ResourcePlan]) -> None:
        self.departments = departments
        self.catalog = catalog
        self.shareable = [i for i, r in enumerate(catalog) if r.shareable]
        self.popularity = Weighted(zipf_weights(len(self.shareable))) if self.shareable else None
        self._options: dict[int, list[int]] = {}
        weights = accessor_weights(departments)
        for d in departments:  # a department that provides everything shareable takes nothing
            if not any(catalog[r].provider != d.seq for r in self.shareable):
                weights[d.seq] = 0.0
        if sum(weights) <= 0:
            raise ValueError("no department can take a shareable catalog item from another")
        self.accessors = Weighted(weights)
        self._statistics = {d.seq for d in departments if d.name == STATISTICS_BUREAU}
        self._modes = {
            True: ([m for m, _ in STATISTICS_MODES], Weighted([w for _, w in STATISTICS_MODES])),
            False: ([m for m, _ in OTHER_MODES], Weighted([w for _, w in OTHER_MODES])),
        }
        self._names = [tuple(f.name for f in r.fields) for r in catalog]
        self._plain = [
            tuple(f.name for f in r.fields if not f.sensitive) or self._names[i]
            for i, r in enumerate(catalog)
        ]

    def shuffle(self, rng: random.Random) -> None:
        """Which items are hot: a random order of the shareable catalog under the Zipf weights."""
        rng.shuffle(self.shareable)

    def resource_for(self, accessor: int, rng: random.Random) -> int:
        assert self.popularity is not None
        for _ in range(32):
            resource = self.shareable[self.popularity.draw(rng)]
            if self.catalog[resource].provider != accessor:
                return resource
        options = self._options.get(accessor)
        if options is None:
            options = [r for r in self.shareable if self.catalog[r].provider != accessor]
            self._options[accessor] = options
        return rng.choice(options)

    def terms(self, accessor: int, resource: int, rng: random.Random) -> GrantTerms:
        department = self.departments[accessor]
        statistics = accessor in self._statistics
        if statistics or rng.random() < OWN_PURPOSE_RATE:
            purpose = department.purpose
        else:
            purpose = OTHER_PURPOSES[int(rng.random() * len(OTHER_PURPOSES))]
        modes, sampler = self._modes[statistics]
        mode = modes[sampler.draw(rng)]
        if mode is AccessMode.AGGREGATE:
            names = self._plain[resource]
        elif mode is AccessMode.VERIFY:
            names = self._names[resource][:1]  # the key field: is this person/organisation on the list?
        else:
            names = self._names[resource]
        n = len(names)
        if n > 1:  # a run of 1..n fields from a random start, wrapping around
            start, k = int(rng.random() * n), 1 + int(rng.random() * n)
            names = (names + names)[start : start + k]
        return GrantTerms(purpose, mode, names)


def plan_requests(model: CityModel, grants: int, rng: random.Random) -> list[RequestPlan]:
    """Share requests for the pairs the traffic favours, until ``grants`` are granted: every tenth
    request on a conditional item is rejected (with a reason) and grants nothing. Level ≥ 3 items are
    left out (they need the registrar's co-signature, a step this simulation does not take), so fewer
    grants come back when the city has too few distinct pairs."""
    eligible = {r for r in model.shareable if model.catalog[r].level <= 2}
    plans: list[RequestPlan] = []
    seen: set[tuple[int, int]] = set()
    granted = conditional = 0
    attempts = 0
    while granted < grants and eligible and attempts < 50 * grants + 1000:
        attempts += 1
        accessor = model.accessors.draw(rng)
        resource = model.resource_for(accessor, rng)
        if resource not in eligible or (accessor, resource) in seen:
            continue
        seen.add((accessor, resource))
        approve = True
        if model.catalog[resource].share_type is ShareType.CONDITIONAL:
            conditional += 1
            approve = conditional % 10 != 0
        plans.append(RequestPlan(accessor, resource, model.terms(accessor, resource, rng), approve))
        granted += approve
    return plans


def draw_events(
    model: CityModel,
    grants: dict[tuple[int, int], GrantTerms],
    *,
    total: int,
    now: datetime,
    days: int,
    rng: random.Random,
) -> Iterator[Draft]:
    """``total`` events in time order over the ``days`` ending ``now``."""
    calendar_days = calendar(now, days)
    seq = 0
    for day, count in zip(calendar_days, per_day(total, calendar_days), strict=True):
        if not count:
            continue
        slots = Weighted(HALF_HOURS[: day.slots])
        slot = SLOT.total_seconds()
        offsets = sorted((slots.draw(rng) + rng.random()) * slot for _ in range(count))
        for offset in offsets:
            when = day.start + timedelta(seconds=offset)
            yield _draft(model, grants, seq, when if when < now else now, rng)
            seq += 1


def _draft(
    model: CityModel, grants: dict[tuple[int, int], GrantTerms], seq: int, when: datetime, rng: random.Random
) -> Draft:
    accessor = model.accessors.draw(rng)
    resource = model.resource_for(accessor, rng)
    terms = grants.get((accessor, resource)) or model.terms(accessor, resource, rng)
    denied = rng.random() < DENIED_RATE
    if terms.mode is AccessMode.VERIFY:
        records = 1 + int(rng.random() * 50)
    elif terms.mode is AccessMode.AGGREGATE:
        records = int(10 ** rng.uniform(3, 5.7))
    else:
        records = int(10 ** rng.uniform(0, 3.7))
    return Draft(
        seq=seq,
        time=when,
        accessor=accessor,
        resource=resource,
        denied_reason=DENIAL_REASONS[int(rng.random() * len(DENIAL_REASONS))] if denied else None,
        purpose=terms.purpose,
        mode=terms.mode,
        fields=terms.fields,
        record_count=0 if denied else records,
        query_hash=f"0x{rng.getrandbits(256):064x}",
        result_hash=None if denied else f"0x{rng.getrandbits(256):064x}",
    )
