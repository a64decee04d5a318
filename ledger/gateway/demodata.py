"""Deterministic demo tables for the seeded city (Guiyang, 贵阳市, divisions 5201xx).

The demo and the benchmarks need source data that looks like a city's: population (人口库), legal
persons (法人库), social security (社保), real estate (不动产登记, with the 是否首套房 status that
Foshan's sharing pilot exposes for verification) and credit (信用). Every identity number is valid
under GB 11643-1999 and every credit code under GB 32100-2015, so the gateway's validation and
masking see realistic input; none of them is issued to anyone.

Determinism: the same ``seed`` always yields the same rows. Person *i* of the population is a pure
function of ``(seed, i)`` (SplitMix64 mixing, not a shared stream), so the other tables can refer to
people by index — social security and real estate owners are population people (plus a few from
outside the city), the same identity numbers with the same names — and a ``verify`` query ("is this
person insured?", "is this a first home?") has both yes and no answers. The other tables draw their
own values from ``random.Random(f"{seed}:{table}")``.

Unlike the rest of ``ledger.gateway`` this module writes files (CSV, SQLite or any SQLAlchemy URL).
"""

from __future__ import annotations

import csv
import math
import random
from collections.abc import Callable, Iterator, Mapping
from datetime import date, timedelta
from itertools import count, islice
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ledger.errors import InvalidInput
from ledger.identity.id_number import make_id_number
from ledger.identity.uscc import make_uscc
from ledger.sharing.catalog import FieldSpec
from ledger.types import MaskingRule

__all__ = [
    "DISTRICTS",
    "KEY_FIELDS",
    "TABLES",
    "generate",
    "legal_person_uscc",
    "person",
    "write_csv",
    "write_sqlite",
]

#: GB/T 2260 county-level divisions of Guiyang (贵阳市, 520100).
DISTRICTS: dict[str, str] = {
    "520102": "南明区",
    "520103": "云岩区",
    "520111": "花溪区",
    "520112": "乌当区",
    "520113": "白云区",
    "520115": "观山湖区",
    "520121": "开阳县",
    "520122": "息烽县",
    "520123": "修文县",
    "520181": "清镇市",
}
_DIVISIONS = tuple(DISTRICTS)
# Weighted by population: the urban districts hold most people.
_DIVISION_WEIGHTS = (16, 20, 12, 5, 6, 10, 5, 3, 4, 6)

_S, _I, _N, _B, _D = "string", "integer", "number", "boolean", "date"


def _f(name: str, type_: str, masking: MaskingRule = MaskingRule.NONE) -> FieldSpec:
    return FieldSpec(name, type_, masking is not MaskingRule.NONE, masking)


#: Each table's catalog fields, with the 脱敏 rule of every sensitive one.
TABLES: dict[str, list[FieldSpec]] = {
    "population": [
        _f("id_number", _S, MaskingRule.ID_NUMBER),
        _f("name", _S, MaskingRule.NAME),
        _f("sex", _S),
        _f("birth_date", _D, MaskingRule.GENERALIZE),
        _f("district", _S),
        _f("address", _S, MaskingRule.ADDRESS),
        _f("phone", _S, MaskingRule.PHONE),
        _f("household_type", _S),
    ],
    "legal_persons": [
        _f("uscc", _S),
        _f("name", _S),
        _f("legal_rep_name", _S, MaskingRule.NAME),
        _f("legal_rep_id_number", _S, MaskingRule.ID_NUMBER),
        _f("registered_capital", _I),
        _f("industry", _S),
        _f("district", _S),
        _f("established", _D),
        _f("status", _S),
    ],
    "social_security": [
        _f("id_number", _S, MaskingRule.ID_NUMBER),
        _f("insured", _B),
        _f("insurance_type", _S),
        _f("employer_uscc", _S),
        _f("monthly_base", _I, MaskingRule.GENERALIZE),
        _f("since", _D),
    ],
    "real_estate": [
        _f("cert_no", _S, MaskingRule.PSEUDONYM),
        _f("owner_id_number", _S, MaskingRule.ID_NUMBER),
        _f("owner_name", _S, MaskingRule.NAME),
        _f("district", _S),
        _f("address", _S, MaskingRule.ADDRESS),
        _f("area_m2", _N),
        _f("is_first_home", _B),
        _f("registered_on", _D),
    ],
    "credit": [
        _f("uscc", _S),
        _f("rating", _S),
        _f("dishonest", _B),
        _f("penalties", _I),
        _f("updated_on", _D),
    ],
}
#: The column that identifies a row (primary key in SQL, the natural ``verify`` key).
KEY_FIELDS = {
    "population": "id_number",
    "legal_persons": "uscc",
    "social_security": "id_number",
    "real_estate": "cert_no",
    "credit": "uscc",
}

# ---- people ------------------------------------------------------------------------------------

_SURNAMES = (
    "王" * 70 + "李" * 68 + "张" * 66 + "刘" * 52 + "陈" * 46 + "杨" * 44 + "黄" * 26 + "赵" * 26
    + "吴" * 22 + "周" * 22 + "徐" * 16 + "孙" * 14 + "马" * 14 + "朱" * 12 + "胡" * 12 + "郭" * 12
    + "何" * 10 + "罗" * 14 + "高" * 10 + "林" * 8 + "龙" * 8 + "杜" * 6 + "袁" * 6 + "田" * 8
    + "冯" * 6 + "邓" * 8 + "曹" * 5 + "彭" * 5 + "蒋" * 5 + "潘" * 4 + "韦" * 6 + "宋" * 5
)  # fmt: skip
_COMPOUND = ("欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "令狐", "慕容")
_GIVEN_M = "伟强磊军勇杰涛明超刚平辉鹏华飞鑫波斌宇浩凯健俊帆帅旭宁龙林峰文博志刚成康"
_GIVEN_F = "芳娜敏静丽艳娟霞秀玲婷雪琳颖倩慧莉梅琴云红燕洁萍蓉晶欣怡佳悦岚露瑶蕾"
_ROADS = (
    "中华北路", "中华南路", "延安东路", "延安西路", "北京路", "宝山北路", "遵义路", "市南路", "花溪大道",
    "贵黄路", "观山东路", "林城西路", "长岭南路", "金阳南路", "新添大道", "白云大道", "沙冲路", "瑞金北路",
    "都司路", "富水北路", "黔灵西路", "枣山路", "甲秀南路", "小河路", "清溪路", "红枫湖路", "阳明路",
)  # fmt: skip
_MOBILE = ("134", "135", "136", "137", "138", "139", "150", "151", "152", "157", "158", "159", "182",
           "183", "187", "188", "130", "131", "132", "155", "156", "185", "186", "133", "153", "180",
           "181", "189", "177", "199", "198", "166")  # fmt: skip
_EPOCH = date(1940, 1, 1)
_BIRTH_DAYS = (date(2019, 12, 31) - _EPOCH).days + 1
_IDS = len(_DIVISIONS) * _BIRTH_DAYS * 1000
# j = (i·A + B) mod _IDS is a bijection on [0, _IDS) when gcd(A, _IDS) = 1: distinct people, distinct numbers.
_A = next(a for a in count(7_919_993) if math.gcd(a, _IDS) == 1)
#: People with an index from here on live outside the population table's usual range ("外地").
OUTSIDER_BASE = 200_000_000
_M64 = (1 << 64) - 1


def _mix(x: int) -> int:
    """SplitMix64's finaliser (Steele, Lea, Flood 2014): a fast, well-spread 64-bit hash of ``x``."""
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


_WEIGHTED_DIVISIONS = tuple(d for d, w in zip(_DIVISIONS, _DIVISION_WEIGHTS, strict=True) for _ in range(w))


def person(i: int, *, seed: int = 2021) -> dict[str, Any]:
    """Population row ``i`` (0-based) for ``seed``: random access, so other tables can cite people."""
    if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < _IDS:
        raise InvalidInput(f"person index out of range: {i}", code="invalid_demo_index")
    j = (i * _A + _mix(seed) % _IDS) % _IDS
    rest, seq = divmod(j, 1000)
    division_index, day = divmod(rest, _BIRTH_DAYS)
    h1 = _mix((seed << 40) ^ i)
    h2 = _mix(h1)
    h3 = _mix(h2)
    # The ID number's division is where the person was registered at birth; most still live there.
    home = _DIVISIONS[division_index] if h1 & 7 else _WEIGHTED_DIVISIONS[(h1 >> 3) % len(_WEIGHTED_DIVISIONS)]
    male = seq % 2 == 1  # GB 11643-1999 §7.3: odd sequence code for men
    pool = _GIVEN_M if male else _GIVEN_F
    if (h1 >> 10) % 64 == 0:
        surname = _COMPOUND[(h1 >> 16) % len(_COMPOUND)]
    else:
        surname = _SURNAMES[(h1 >> 16) % len(_SURNAMES)]
    given = pool[(h1 >> 28) % len(pool)]
    if (h1 >> 36) % 10 < 7:
        given += pool[(h1 >> 42) % len(pool)]
    road = _ROADS[h2 % len(_ROADS)]
    number = (h2 >> 8) % 400 + 1
    building = f"{(h2 >> 18) % 30 + 1}栋{(h2 >> 24) % 4 + 1}单元{(h2 >> 28) % 30 + 1}0{(h2 >> 34) % 6 + 1}室"
    mobile = f"{_MOBILE[h3 % len(_MOBILE)]}{(h3 >> 8) % 100_000_000:08d}"
    birth = _EPOCH + timedelta(days=day)
    return {
        "id_number": make_id_number(_DIVISIONS[division_index], birth, seq),
        "name": surname + given,
        "sex": "男" if male else "女",
        "birth_date": birth.isoformat(),
        "district": DISTRICTS[home],
        "address": f"贵州省贵阳市{DISTRICTS[home]}{road}{number}号{building}",
        "phone": mobile,
        "household_type": "集体户" if (h2 >> 40) % 100 < 8 else "家庭户",
    }


def _population(n: int, seed: int) -> Iterator[dict[str, Any]]:
    return (person(i, seed=seed) for i in range(n))


# ---- organisations -----------------------------------------------------------------------------

_INDUSTRIES = (
    ("信息传输、软件和信息技术服务业", ("科技", "数据", "信息技术", "网络")),
    ("制造业", ("制造", "电子", "机械", "材料")),
    ("批发和零售业", ("商贸", "贸易", "百货")),
    ("建筑业", ("建设", "建筑工程", "装饰工程")),
    ("住宿和餐饮业", ("餐饮", "酒店管理")),
    ("租赁和商务服务业", ("咨询", "企业管理", "人力资源")),
    ("科学研究和技术服务业", ("检测", "技术服务")),
    ("交通运输、仓储和邮政业", ("物流", "运输")),
    ("农、林、牧、渔业", ("农业", "茶业", "生态农业")),
    ("房地产业", ("置业", "房地产开发")),
)
_BRAND_A = "云黔筑林山泉星海金华鑫恒博盛达天宏瑞丰新源"
_BRAND_B = "阳江峰城信通安创远德祥隆泰和美康宇智辰晟"
_STATUS = ("存续",) * 80 + ("在业",) * 10 + ("吊销",) * 4 + ("注销",) * 6
_USCC_BASE = 10_000_000


def legal_person_uscc(k: int) -> str:
    """The credit code of legal person ``k`` (an enterprise, 91 + the district registering it)."""
    return make_uscc(_USCC_BASE + k, division=_DIVISIONS[k % len(_DIVISIONS)], authority="9", kind="1")


def _adult(rng: random.Random, seed: int, pool: int) -> dict[str, Any]:
    while True:
        p = person(rng.randrange(pool), seed=seed)
        if p["birth_date"] <= "2002-12-31":
            return p


def _day(rng: random.Random, start: date, end: date) -> str:
    return (start + timedelta(days=rng.randrange((end - start).days + 1))).isoformat()


def _legal_persons(n: int, seed: int) -> Iterator[dict[str, Any]]:
    rng = random.Random(f"{seed}:legal_persons")
    for k in range(n):
        industry, words = _INDUSTRIES[rng.randrange(len(_INDUSTRIES))]
        brand = _BRAND_A[k % len(_BRAND_A)] + _BRAND_B[(k // len(_BRAND_A)) % len(_BRAND_B)]
        rep = _adult(rng, seed, max(1000, n * 10))
        yield {
            "uscc": legal_person_uscc(k),
            "name": f"贵阳{brand}{rng.choice(words)}有限公司",
            "legal_rep_name": rep["name"],
            "legal_rep_id_number": rep["id_number"],
            "registered_capital": int(10 ** rng.uniform(1, 5)),
            "industry": industry,
            "district": DISTRICTS[_DIVISIONS[k % len(_DIVISIONS)]],
            "established": _day(rng, date(1995, 1, 1), date(2024, 12, 31)),
            "status": rng.choice(_STATUS),
        }


def _credit(n: int, seed: int) -> Iterator[dict[str, Any]]:
    rng = random.Random(f"{seed}:credit")
    for k in range(n):
        rating = rng.choices("ABCD", weights=(55, 30, 10, 5))[0]
        dishonest = rng.random() < {"A": 0.0, "B": 0.01, "C": 0.15, "D": 0.6}[rating]
        penalties = (
            0 if rating == "A" else min(int(rng.expovariate(1.0 / {"B": 0.3, "C": 1.5, "D": 4}[rating])), 50)
        )
        yield {
            "uscc": legal_person_uscc(k),
            "rating": rating,
            "dishonest": dishonest,
            "penalties": penalties,
            "updated_on": _day(rng, date(2023, 1, 1), date(2024, 12, 31)),
        }


# ---- records about people ----------------------------------------------------------------------

_EMPLOYEE_TYPES = ("城镇职工基本养老保险", "城镇职工基本医疗保险", "失业保险", "工伤保险")
_RESIDENT_TYPES = ("城乡居民基本养老保险", "城乡居民基本医疗保险")
_EMPLOYERS = 1000


def _people(rng: random.Random, share: float, outsiders: float) -> Iterator[int]:
    """Person indices in order, keeping each with probability ``share``, mixing in outsiders."""
    outsider = OUTSIDER_BASE
    for i in count():
        if rng.random() < outsiders:
            yield outsider
            outsider += 1
        if rng.random() < share:
            yield i


def _social_security(n: int, seed: int) -> Iterator[dict[str, Any]]:
    rng = random.Random(f"{seed}:social_security")
    for i in islice(_people(rng, share=0.75, outsiders=0.05), n):
        p = person(i, seed=seed)
        born = date.fromisoformat(p["birth_date"])
        working_age = born <= date(2006, 12, 31) and born >= date(1960, 1, 1)
        employed = working_age and rng.random() < 0.7
        kind = rng.choice(_EMPLOYEE_TYPES if employed else _RESIDENT_TYPES)
        start = max(born + timedelta(days=18 * 366) if employed else born, date(1995, 1, 1))
        yield {
            "id_number": p["id_number"],
            "insured": rng.random() < 0.9,
            "insurance_type": kind,
            "employer_uscc": legal_person_uscc(int(rng.random() ** 2 * _EMPLOYERS)) if employed else None,
            "monthly_base": rng.randrange(3_500, 25_000, 100) if employed else None,
            "since": _day(rng, min(start, date(2024, 12, 31)), date(2024, 12, 31)),
        }


def _real_estate(n: int, seed: int) -> Iterator[dict[str, Any]]:
    rng = random.Random(f"{seed}:real_estate")
    serial = 0
    for i in _people(rng, share=0.45, outsiders=0.03):
        p = person(i, seed=seed)
        if p["birth_date"] > "2002-12-31":
            continue
        homes = 2 if rng.random() < 0.2 else 1
        earliest = max(date.fromisoformat(p["birth_date"]) + timedelta(days=22 * 366), date(2000, 1, 1))
        for nth in range(homes):
            if serial >= n:
                return
            serial += 1
            registered = _day(rng, min(earliest, date(2024, 12, 31)), date(2024, 12, 31))
            division = rng.choice(_WEIGHTED_DIVISIONS)
            yield {
                "cert_no": f"黔({registered[:4]})贵阳市不动产权第{serial:07d}号",
                "owner_id_number": p["id_number"],
                "owner_name": p["name"],
                "district": DISTRICTS[division],
                "address": f"贵州省贵阳市{DISTRICTS[division]}{rng.choice(_ROADS)}{rng.randrange(1, 400)}号"
                f"{rng.randrange(1, 30)}栋{rng.randrange(1, 33)}0{rng.randrange(1, 7)}室",
                "area_m2": round(rng.uniform(38.0, 220.0), 2),
                "is_first_home": nth == 0,
                "registered_on": registered,
            }


_GENERATORS: dict[str, Callable[[int, int], Iterator[dict[str, Any]]]] = {
    "population": _population,
    "legal_persons": _legal_persons,
    "social_security": _social_security,
    "real_estate": _real_estate,
    "credit": _credit,
}


def generate(table: str, n: int, *, seed: int = 2021) -> Iterator[dict[str, Any]]:
    """The first ``n`` rows of ``table`` for ``seed``, in the order of :data:`TABLES` fields.

    Dates are ISO strings; values are str / int / float / bool / None, as the gateway's rows.
    """
    if table not in _GENERATORS:
        raise InvalidInput(f"unknown demo table {table!r} (one of {', '.join(TABLES)})", code="unknown_table")
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise InvalidInput(f"row count must be a non-negative integer, got {n!r}", code="invalid_demo_count")
    return islice(_GENERATORS[table](n, seed), n)


# ---- writers -----------------------------------------------------------------------------------

_SQL_TYPES: dict[str, Callable[[], sa.types.TypeEngine[Any]]] = {
    _S: lambda: sa.String(128),
    _I: sa.BigInteger,
    _N: sa.Float,
    _B: sa.Boolean,
    _D: sa.Date,
}


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def write_csv(path: str | Path, table: str, n: int, *, seed: int = 2021) -> int:
    """Write ``n`` rows of ``table`` as UTF-8 CSV with a header row; returns the row count.

    Booleans are written ``true``/``false``, nulls as empty cells, dates as ``YYYY-MM-DD``.
    """
    rows = generate(table, n, seed=seed)
    names = [f.name for f in TABLES[table]]
    written = 0
    with Path(path).open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(names)
        for row in rows:
            writer.writerow([_csv_value(row[name]) for name in names])
            written += 1
    return written


def sql_table(table: str, metadata: sa.MetaData | None = None) -> sa.Table:
    """The SQLAlchemy Core table for a demo table (dates as ``DATE``, the key as primary key)."""
    if table not in TABLES:
        raise InvalidInput(f"unknown demo table {table!r}", code="unknown_table")
    key = KEY_FIELDS[table]
    columns = [
        sa.Column(f.name, _SQL_TYPES[f.type](), primary_key=f.name == key, nullable=f.name != key)
        for f in TABLES[table]
    ]
    return sa.Table(table, metadata if metadata is not None else sa.MetaData(), *columns)


def _sql_row(row: Mapping[str, Any], dates: frozenset[str]) -> dict[str, Any]:
    return {k: date.fromisoformat(v) if k in dates and v is not None else v for k, v in row.items()}


def write_sqlite(path_or_url: str | Path, table: str, n: int, *, seed: int = 2021, chunk: int = 5000) -> int:
    """(Re)create ``table`` in a SQLite file (or any SQLAlchemy URL) and insert ``n`` rows in chunks.

    An existing table of that name is dropped first, so the result is exactly the generated rows.
    Returns the row count.
    """
    text = str(path_or_url)
    url = text if "://" in text else f"sqlite:///{Path(text)}"
    target = sql_table(table)
    dates = frozenset(f.name for f in TABLES[table] if f.type == _D)
    rows = generate(table, n, seed=seed)
    engine = sa.create_engine(url)
    written = 0
    try:
        with engine.begin() as conn:
            target.drop(conn, checkfirst=True)
            target.create(conn)
        while batch := [_sql_row(row, dates) for row in islice(rows, chunk)]:
            with engine.begin() as conn:
                conn.execute(target.insert(), batch)
            written += len(batch)
    finally:
        engine.dispose()
    return written
