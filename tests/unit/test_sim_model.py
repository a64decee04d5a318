"""The simulated city's pure model (ledger/sim/city.py, ledger/sim/skew.py): scale, roster, catalog,
requests and the skew of the events, checked without a ledger."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger import purposes
from ledger.log.events import AccessMode
from ledger.sim import city, skew
from ledger.sim.city import STATISTICS_BUREAU, Scale, Tier, build_scale
from ledger.types import MaskingRule, ShareType

NOW = datetime(2026, 11, 23, 19, 45, tzinfo=UTC)  # Monday 03:45 on the 24th in Asia/Shanghai


def test_default_scale_is_guiyang_2021() -> None:
    scale = Scale()
    assert (scale.departments, scale.resources, scale.events) == (34 + 14 + 375, 18_725, 30_540_000)
    small = build_scale(0.01)
    assert (small.departments, small.resources, small.grants, small.events) == (4, 187, 20, 305_400)
    assert build_scale(0.01, events=1_000_000, resources=50).events == 1_000_000
    assert build_scale(1e-9).departments == 2 and build_scale(1e-9).resources == 1


@pytest.mark.parametrize(
    "kwargs",
    [{"departments": 1}, {"departments": 424}, {"resources": 0}, {"events": -1}, {"days": 0}],
)
def test_impossible_scales_are_refused(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        build_scale(**kwargs)
    with pytest.raises(ValueError):
        Scale().scaled(0)


def test_roster_is_guiyang_shaped_and_led_by_the_statistics_bureau() -> None:
    full = city.roster(city.GUIYANG_DEPARTMENTS)
    assert full[0].name == STATISTICS_BUREAU
    assert Counter(d.tier for d in full) == {Tier.CITY: 34, Tier.DISTRICT: 14, Tier.UNIT: 375}
    assert len({d.name for d in full}) == len(full)
    assert all(purposes.get(d.purpose) for d in full)
    assert all(purposes.get(p) for p in skew.OTHER_PURPOSES)
    assert city.roster(3) == full[:3]
    with pytest.raises(ValueError):
        city.roster(0)


def test_catalog_plan_is_valid_and_spread_by_supply() -> None:
    departments = city.roster(40)
    catalog = city.plan_catalog(departments, 2000, random.Random(1))
    assert len(catalog) == 2000 and len({r.code for r in catalog}) == 2000
    assert sum(city.supply(departments, 2000)) == 2000
    per_provider = Counter(r.provider for r in catalog)
    assert per_provider[1] > per_provider[0]  # public security supplies more than statistics
    assert per_provider[1] > per_provider[39]  # a city department more than a district
    assert catalog[0].provider != 0 and catalog[0].share_type is ShareType.CONDITIONAL
    for r in catalog:
        assert 1 <= r.level <= 3
        assert r.fields[0].name in ("id_number", "uscc")
        assert len({f.name for f in r.fields}) == len(r.fields)
        assert all(f.sensitive == (f.masking is not MaskingRule.NONE) for f in r.fields)
    shares = Counter(r.share_type for r in catalog)
    assert shares[ShareType.CONDITIONAL] > shares[ShareType.UNCONDITIONAL] > shares[ShareType.NONE] > 0


def _model(departments: int, resources: int, seed: int = 3) -> skew.CityModel:
    rng = random.Random(seed)
    roster = city.roster(departments)
    model = skew.CityModel(roster, city.plan_catalog(roster, resources, rng))
    model.shuffle(rng)
    return model


def test_statistics_bureau_leads_the_accessors() -> None:
    weights = skew.accessor_weights(city.roster(city.GUIYANG_DEPARTMENTS))
    assert weights[0] == skew.STATISTICS_LEAD * max(weights[1:])


def test_requests_target_granted_pairs_that_make_sense() -> None:
    model = _model(10, 200)
    plans = skew.plan_requests(model, 40, random.Random(5))
    assert sum(p.approve for p in plans) == 40
    assert len({(p.requester, p.resource) for p in plans}) == len(plans)
    for p in plans:
        resource = model.catalog[p.resource]
        assert resource.shareable and resource.level <= 2 and resource.provider != p.requester
        assert set(p.terms.fields) <= {f.name for f in resource.fields}
        assert p.approve or resource.share_type is ShareType.CONDITIONAL
    assert len(skew.plan_requests(_model(2, 1), 10, random.Random(5))) <= 1  # one pair at most


def test_events_are_skewed_and_timed() -> None:
    model = _model(30, 500)
    drafts = list(skew.draw_events(model, {}, total=20_000, now=NOW, days=90, rng=random.Random(9)))
    assert len(drafts) == 20_000 and [d.seq for d in drafts] == list(range(20_000))
    times = [d.time for d in drafts]
    assert times == sorted(times) and times[-1] <= NOW and times[0] >= NOW - timedelta(days=90)
    assert sum(skew.is_office_hours(t) for t in times) / len(times) >= 0.8
    accessors = Counter(d.accessor for d in drafts).most_common()
    assert accessors[0][0] == 0 and accessors[0][1] > 1.5 * accessors[1][1]
    assert all(model.catalog[d.resource].provider != d.accessor for d in drafts)
    assert all(model.catalog[d.resource].shareable for d in drafts)
    hot = Counter(d.resource for d in drafts).most_common()
    assert sum(n for _, n in hot[:5]) / len(drafts) > 0.25  # 1 % of the catalog, a quarter of the traffic
    denied = [d for d in drafts if d.denied_reason]
    assert 0.01 < len(denied) / len(drafts) < 0.03
    assert all(d.record_count == 0 and d.result_hash is None for d in denied)
    assert len({d.mode for d in drafts}) == len(AccessMode) and len({d.purpose for d in drafts}) > 5


def test_same_seed_same_city() -> None:
    def run(seed: int) -> list[skew.Draft]:
        return list(
            skew.draw_events(_model(8, 50), {}, total=2000, now=NOW, days=30, rng=random.Random(seed))
        )

    assert run(4) == run(4)
    assert run(4) != run(5)


def test_a_granted_pair_uses_the_grant_terms() -> None:
    model = _model(5, 20)
    rng = random.Random(2)
    plans = skew.plan_requests(model, 3, rng)
    grants = {(p.requester, p.resource): p.terms for p in plans if p.approve}
    drafts = list(skew.draw_events(model, grants, total=3000, now=NOW, days=30, rng=rng))
    under = [d for d in drafts if (d.accessor, d.resource) in grants]
    assert under
    for d in under:
        terms = grants[(d.accessor, d.resource)]
        assert (d.purpose, d.mode, d.fields) == (terms.purpose, terms.mode, terms.fields)


def test_the_last_day_stops_at_now_and_off_days_are_quiet() -> None:
    days = skew.calendar(NOW, 14)
    assert len(days) == 14 and days[-1].slots == 7  # 03:45 local: seven full half hours
    weekdays = [d.weight for d in days[:-1] if d.start.weekday() < 5]
    weekends = [d.weight for d in days[:-1] if d.start.weekday() >= 5]
    assert min(weekdays) > 10 * max(weekends)


@given(total=st.integers(0, 100_000), days=st.integers(1, 60))
def test_per_day_splits_exactly(total: int, days: int) -> None:
    counts = skew.per_day(total, skew.calendar(NOW, days))
    assert sum(counts) == total and min(counts) >= 0


def test_a_city_where_nobody_can_take_anything_is_refused() -> None:
    roster = city.roster(2)
    catalog = city.plan_catalog(roster, 1, random.Random(0))
    only = catalog[0]
    hoarded = [city.ResourcePlan(**{**only.__dict__, "share_type": ShareType.NONE})]
    with pytest.raises(ValueError, match="no department can take"):
        skew.CityModel(roster, hoarded)
