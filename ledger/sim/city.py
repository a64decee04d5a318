"""The simulated city: its scale and its plan — departments and the catalog they publish. Pure.

Default scale: Guiyang's government data sharing platform as reported for 2021-09 — 18,725 catalog
items from 34 city departments, 14 districts (区县及开发区) and 375 units, and 30.54 million
city-level exchanges. Districts and units are modelled as departments (they publish and request
like one), so the default city has 34 + 14 + 375 = 423 departments. The published figures give no
count of share grants; :data:`DEFAULT_GRANTS` is this simulation's own choice.

A smaller city takes the first departments of the roster (the 34 city departments first, led by the
statistics bureau, then the districts, then the units) and as many catalog items as asked.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass, replace
from datetime import timedelta, timezone
from typing import TypeVar

from ledger.types import MaskingRule, OpenType, ShareType

#: Asia/Shanghai without a tz database: mainland China has kept UTC+8 without DST since 1991.
CHINA_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")

GUIYANG_CITY_DEPARTMENTS = 34
GUIYANG_DISTRICTS = 14
GUIYANG_UNITS = 375
GUIYANG_DEPARTMENTS = GUIYANG_CITY_DEPARTMENTS + GUIYANG_DISTRICTS + GUIYANG_UNITS
GUIYANG_RESOURCES = 18_725
GUIYANG_EVENTS = 30_540_000
DEFAULT_GRANTS = 2_000
DEFAULT_DAYS = 365
STATISTICS_BUREAU = "贵阳市统计局"


@dataclass(frozen=True, kw_only=True)
class Scale:
    """How big a city to simulate; every dimension can be set on its own."""

    departments: int = GUIYANG_DEPARTMENTS
    resources: int = GUIYANG_RESOURCES
    grants: int = DEFAULT_GRANTS
    events: int = GUIYANG_EVENTS
    days: int = DEFAULT_DAYS

    def scaled(self, factor: float) -> Scale:
        """Every count multiplied by ``factor`` (the period stays): at least 2 departments (one
        provides, another requests) and 1 catalog item."""
        if factor <= 0:
            raise ValueError("the scale factor must be positive")
        return replace(
            self,
            departments=max(2, round(self.departments * factor)),
            resources=max(1, round(self.resources * factor)),
            grants=round(self.grants * factor),
            events=round(self.events * factor),
        )

    def validate(self) -> None:
        if not 2 <= self.departments <= GUIYANG_DEPARTMENTS:
            raise ValueError(f"departments must be 2..{GUIYANG_DEPARTMENTS} (the roster's size)")
        if self.resources < 1 or self.grants < 0 or self.events < 0 or self.days < 1:
            raise ValueError("resources must be ≥ 1, grants and events ≥ 0, days ≥ 1")


def build_scale(
    factor: float = 1.0,
    *,
    departments: int | None = None,
    resources: int | None = None,
    grants: int | None = None,
    events: int | None = None,
    days: int | None = None,
) -> Scale:
    """The default (Guiyang) scale times ``factor``, then each dimension given explicitly set as is."""
    scale = Scale() if factor == 1.0 else Scale().scaled(factor)
    scale = Scale(
        departments=scale.departments if departments is None else departments,
        resources=scale.resources if resources is None else resources,
        grants=scale.grants if grants is None else grants,
        events=scale.events if events is None else events,
        days=scale.days if days is None else days,
    )
    scale.validate()
    return scale


class Tier(enum.StrEnum):
    CITY = "city"  # 市直部门
    DISTRICT = "district"  # 区县（市）人民政府、开发区管委会
    UNIT = "unit"  # 区县部门等单位


@dataclass(frozen=True)
class Department:
    seq: int  # position in the roster, also the credit code's sequence number
    name: str
    tier: Tier
    division: str  # GB/T 2260 code of where it sits (credit code)
    purpose: str  # its usual purpose code when it requests data


# (name, usual purpose). The statistics bureau leads: the heaviest accessor of the platform.
CITY_DEPARTMENTS: tuple[tuple[str, str], ...] = (
    (STATISTICS_BUREAU, "statistics"),
    ("贵阳市公安局", "law_enforcement"),
    ("贵阳市民政局", "social_assistance"),
    ("贵阳市人力资源和社会保障局", "employment_service"),
    ("贵阳市住房和城乡建设局", "housing_administration"),
    ("贵阳市市场监督管理局", "market_supervision"),
    ("贵阳市卫生健康委员会", "public_service"),
    ("贵阳市教育局", "public_service"),
    ("贵阳市自然资源和规划局", "urban_planning"),
    ("贵阳市生态环境局", "security_supervision"),
    ("贵阳市交通运输局", "public_service"),
    ("国家税务总局贵阳市税务局", "credit_assessment"),
    ("贵阳市财政局", "fraud_prevention"),
    ("贵阳市发展和改革委员会", "statistics"),
    ("贵阳市工业和信息化局", "market_supervision"),
    ("贵阳市商务局", "market_supervision"),
    ("贵阳市司法局", "law_enforcement"),
    ("贵阳市应急管理局", "emergency_response"),
    ("贵阳市医疗保障局", "fraud_prevention"),
    ("贵阳市退役军人事务局", "social_assistance"),
    ("贵阳市农业农村局", "public_service"),
    ("贵阳市水务管理局", "public_service"),
    ("贵阳市文化和旅游局", "public_service"),
    ("贵阳市审计局", "fraud_prevention"),
    ("贵阳市城市管理局", "urban_planning"),
    ("贵阳市综合行政执法局", "law_enforcement"),
    ("贵阳市林业局", "public_service"),
    ("贵阳市人民政府国有资产监督管理委员会", "market_supervision"),
    ("贵阳市人民政府政务服务中心", "identity_verification"),
    ("贵阳市信访局", "public_service"),
    ("贵阳市住房公积金管理中心", "housing_administration"),
    ("贵阳市科学技术局", "academic_research"),
    ("贵阳市民族宗教事务局", "public_service"),
    ("贵阳市投资促进局", "market_supervision"),
)
# (short name, division code, the seat's full name)
DISTRICTS: tuple[tuple[str, str, str], ...] = (
    ("南明区", "520102", "南明区人民政府"),
    ("云岩区", "520103", "云岩区人民政府"),
    ("花溪区", "520111", "花溪区人民政府"),
    ("乌当区", "520112", "乌当区人民政府"),
    ("白云区", "520113", "白云区人民政府"),
    ("观山湖区", "520115", "观山湖区人民政府"),
    ("开阳县", "520121", "开阳县人民政府"),
    ("息烽县", "520122", "息烽县人民政府"),
    ("修文县", "520123", "修文县人民政府"),
    ("清镇市", "520181", "清镇市人民政府"),
    ("贵阳高新区", "520100", "贵阳国家高新技术产业开发区管理委员会"),
    ("贵阳经开区", "520100", "贵阳国家经济技术开发区管理委员会"),
    ("贵阳综保区", "520100", "贵阳综合保税区管理委员会"),
    ("双龙航空港经济区", "520100", "贵州双龙航空港经济区管理委员会"),
)
# A district's own units: 27 bureaus x 14 districts = 378 ≥ 375.
UNIT_BUREAUS: tuple[tuple[str, str], ...] = (
    ("统计局", "statistics"),
    ("公安分局", "law_enforcement"),
    ("民政局", "social_assistance"),
    ("人力资源和社会保障局", "employment_service"),
    ("住房和城乡建设局", "housing_administration"),
    ("市场监督管理局", "market_supervision"),
    ("卫生健康局", "public_service"),
    ("教育局", "public_service"),
    ("自然资源局", "urban_planning"),
    ("生态环境分局", "security_supervision"),
    ("交通运输局", "public_service"),
    ("税务局", "credit_assessment"),
    ("财政局", "fraud_prevention"),
    ("发展和改革局", "statistics"),
    ("工业和信息化局", "market_supervision"),
    ("商务局", "market_supervision"),
    ("司法局", "law_enforcement"),
    ("应急管理局", "emergency_response"),
    ("医疗保障局", "fraud_prevention"),
    ("退役军人事务局", "social_assistance"),
    ("农业农村局", "public_service"),
    ("水务局", "public_service"),
    ("文化和旅游局", "public_service"),
    ("审计局", "fraud_prevention"),
    ("城市管理局", "urban_planning"),
    ("政务服务中心", "identity_verification"),
    ("信访局", "public_service"),
)


def roster(count: int) -> tuple[Department, ...]:
    """The first ``count`` departments: city departments, then districts, then their units."""
    full: list[tuple[str, Tier, str, str]] = [(n, Tier.CITY, "520100", p) for n, p in CITY_DEPARTMENTS]
    full += [(seat, Tier.DISTRICT, div, "public_service") for _, div, seat in DISTRICTS]
    full += [
        (short + bureau, Tier.UNIT, div, purpose)
        for bureau, purpose in UNIT_BUREAUS
        for short, div, _ in DISTRICTS
    ][:GUIYANG_UNITS]
    if not 1 <= count <= len(full):
        raise ValueError(f"the roster has 1..{len(full)} departments, not {count}")
    return tuple(Department(i, name, tier, div, p) for i, (name, tier, div, p) in enumerate(full[:count]))


@dataclass(frozen=True)
class FieldPlan:
    name: str
    type: str
    sensitive: bool
    masking: MaskingRule


@dataclass(frozen=True)
class ResourcePlan:
    code: str
    name: str
    provider: int  # index into the roster
    share_type: ShareType
    open_type: OpenType
    level: int
    update_frequency: str
    fields: tuple[FieldPlan, ...]

    @property
    def shareable(self) -> bool:
        return self.share_type is not ShareType.NONE


FIELD_POOL: tuple[FieldPlan, ...] = (
    FieldPlan("name", "string", True, MaskingRule.NAME),
    FieldPlan("phone", "string", True, MaskingRule.PHONE),
    FieldPlan("address", "string", True, MaskingRule.ADDRESS),
    FieldPlan("bank_card", "string", True, MaskingRule.BANK_CARD),
    FieldPlan("birth_date", "date", True, MaskingRule.GENERALIZE),
    FieldPlan("household_id", "string", True, MaskingRule.PSEUDONYM),
    FieldPlan("remark", "string", True, MaskingRule.REDACT),
    FieldPlan("district", "string", False, MaskingRule.NONE),
    FieldPlan("industry", "string", False, MaskingRule.NONE),
    FieldPlan("category", "string", False, MaskingRule.NONE),
    FieldPlan("status", "string", False, MaskingRule.NONE),
    FieldPlan("amount", "number", False, MaskingRule.NONE),
    FieldPlan("count", "integer", False, MaskingRule.NONE),
    FieldPlan("registered_on", "date", False, MaskingRule.NONE),
    FieldPlan("updated_at", "datetime", False, MaskingRule.NONE),
)
PERSON_KEY = FieldPlan("id_number", "string", True, MaskingRule.ID_NUMBER)
ORG_KEY = FieldPlan("uscc", "string", False, MaskingRule.NONE)
TOPICS = (
    "人口基础", "社会保险参保", "低保对象", "不动产登记", "企业登记", "个体工商户", "纳税信用", "医保结算",
    "就业登记", "学籍", "婚姻登记", "殡葬服务", "残疾人", "退役军人", "公积金缴存", "住房保障",
    "行政许可", "行政处罚", "食品经营许可", "药品经营", "建设工程", "交通违法", "车辆登记", "水电气缴费",
    "环境监测", "安全生产", "应急物资", "农业补贴", "林地权属", "文化市场", "项目审批", "财政资金",
    "审计发现", "信访事项", "政务服务办件", "科技项目", "宗教活动场所", "招商项目", "价格监测", "统计调查",
)  # fmt: skip
SUFFIXES = ("信息", "数据", "名单", "登记信息", "统计数据", "台账")
FREQUENCIES = ("real_time", "daily", "weekly", "monthly", "quarterly", "yearly")
SHARE_MIX = ((ShareType.CONDITIONAL, 0.6), (ShareType.UNCONDITIONAL, 0.3), (ShareType.NONE, 0.1))
OPEN_MIX = (
    (OpenType.NONE, 0.7),
    (OpenType.OPEN, 0.12),
    (OpenType.ON_APPLICATION, 0.12),
    (OpenType.CONTRACT, 0.06),
)
LEVEL_MIX = ((1, 0.35), (2, 0.5), (3, 0.15))  # level 4 (on chain per access) is left out: see run.py
T = TypeVar("T")
TIER_SUPPLY = {Tier.CITY: 3.0, Tier.DISTRICT: 1.0, Tier.UNIT: 0.3}  # catalog items per department, relative


def _pick(rng: random.Random, mix: tuple[tuple[T, float], ...]) -> T:
    return rng.choices([v for v, _ in mix], weights=[w for _, w in mix])[0]


def supply(departments: tuple[Department, ...], resources: int) -> list[int]:
    """How many catalog items each department provides (largest remainder of its weight): city
    departments the most, falling with rank; the statistics bureau mostly consumes."""
    weights = []
    for d in departments:
        w = TIER_SUPPLY[d.tier] / (d.seq + 1) ** 0.5 if d.tier is Tier.CITY else TIER_SUPPLY[d.tier]
        weights.append(w * (0.2 if d.name == STATISTICS_BUREAU else 1.0))
    total = sum(weights)
    exact = [resources * w / total for w in weights]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(exact)), key=lambda i: exact[i] - counts[i], reverse=True)
    for i in by_remainder[: resources - sum(counts)]:
        counts[i] += 1
    return counts


def plan_catalog(
    departments: tuple[Department, ...], resources: int, rng: random.Random
) -> list[ResourcePlan]:
    """The catalog: ``resources`` items spread by :func:`supply`, interleaved across providers. The
    first two items are conditional (shareable) and the first is not the statistics bureau's, so even
    the smallest city has something its heaviest accessor can take."""
    counts = supply(departments, resources)
    order: list[int] = []
    remaining = counts[:]
    while len(order) < resources:
        for i, left in enumerate(remaining):
            if left:
                order.append(i)
                remaining[i] -= 1
    if order[0] == 0 and len(departments) > 1:  # the statistics bureau's items are not the first
        swap = next((k for k, p in enumerate(order) if p != 0), None)
        if swap is not None:
            order[0], order[swap] = order[swap], order[0]
    plans = []
    per_provider = [0] * len(departments)
    for n, provider in enumerate(order):
        per_provider[provider] += 1
        person = rng.random() < 0.6
        extra = rng.sample(FIELD_POOL if person else FIELD_POOL[7:], rng.randint(3, 7))
        share = ShareType.CONDITIONAL if n < 2 else _pick(rng, SHARE_MIX)
        plans.append(
            ResourcePlan(
                code=f"GY-{provider:03d}-{per_provider[provider]:05d}",
                name=f"{rng.choice(TOPICS)}{rng.choice(SUFFIXES)}",
                provider=provider,
                share_type=share,
                open_type=_pick(rng, OPEN_MIX),
                level=_pick(rng, LEVEL_MIX),
                update_frequency=rng.choice(FREQUENCIES),
                fields=(PERSON_KEY if person else ORG_KEY, *extra),
            )
        )
    return plans
