"""The seeded city scenario for ``sharetrail demo``: Guiyang's registrar, departments, the platform
operator, an enterprise and the regulator. Idempotent: a second start reuses what exists and
prints the same tokens (each derived from a secret sealed in the demo's data directory; the
database keeps only their hashes)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from ledger.audit.lineage import short_ref
from ledger.identity.parties import TOKEN_PREFIX, NewParty, hash_token
from ledger.identity.uscc import make_uscc
from ledger.log.events import AccessEvent, AccessMode, EventKind
from ledger.runtime import Ledger, platform_secret
from ledger.store.models import Party
from ledger.types import MaskingRule, PartyKind

DEMO_PARTIES: tuple[tuple[PartyKind, str, int], ...] = (
    (PartyKind.DEPARTMENT, "贵阳市公安局", 11),
    (PartyKind.DEPARTMENT, "贵阳市民政局", 12),
    (PartyKind.DEPARTMENT, "贵阳市人力资源和社会保障局", 13),
    (PartyKind.DEPARTMENT, "贵阳市住房和城乡建设局", 14),
    (PartyKind.DEPARTMENT, "贵阳市统计局", 15),
    (PartyKind.DEPARTMENT, "贵阳市市场监督管理局", 16),
    (PartyKind.OPERATOR, "贵阳块数据城市建设有限公司", 21),
    (PartyKind.ENTERPRISE, "贵州数联科技有限公司", 31),
    (PartyKind.REGULATOR, "贵阳市公安局网络安全保卫支队（数据安全监管）", 41),
)


def demo_token(secret: bytes, uscc: str) -> str:
    """A demo party's API token: derived from the demo data directory's sealed secret and the
    party's credit code, so a restarted demo prints — and accepts — the same tokens as before
    (nothing but the usual hash is stored)."""
    digest = hmac.new(secret, f"demo-token:{uscc}".encode(), hashlib.sha256).digest()
    return TOKEN_PREFIX + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _set_token(ledger: Ledger, party_id: str, token: str) -> None:
    with ledger.store.session() as session:
        row = session.get(Party, party_id)
        assert row is not None
        row.token_hash = hash_token(token)


def _name_cell(name: str, width: int = 40) -> str:
    """``name`` padded to ``width`` display columns (a CJK character takes two)."""
    shown = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in name)
    return name + " " * max(0, width - shown)


def seed(ledger: Ledger) -> Iterator[str]:
    """Register the demo's parties (once), print a working token for each — the same on every
    start of the same data directory — then seed the log and the gateway."""
    secret = platform_secret(ledger.store, ledger.vault, "demo-tokens")
    registrar = ledger.parties.get(ledger.bootstrap.registrar_id)
    if ledger.settings.bootstrap_token:  # the operator chose the registrar's token: keep it
        token, note = ledger.settings.bootstrap_token, "  (SHARETRAIL_BOOTSTRAP_TOKEN)"
    else:
        token, note = demo_token(secret, registrar.uscc), ""
        _set_token(ledger, registrar.id, token)
    yield f"  registrar   {_name_cell(registrar.name)} token {token}{note}"
    for kind, name, seq in DEMO_PARTIES:
        uscc = make_uscc(seq, division="520100", authority="1" if kind is not PartyKind.ENTERPRISE else "9")
        with ledger.store.session() as session:
            existing = session.scalar(select(Party).where(Party.uscc == uscc))
        token = demo_token(secret, uscc)
        if existing is None:
            party, _ = ledger.parties.register(registrar, NewParty(kind, name, uscc))
            _set_token(ledger, party.id, token)
        else:
            _set_token(ledger, existing.id, token)
        yield f"  {kind.value:<11} {_name_cell(name)} token {token}"
    recorded = seed_accesses(ledger)
    yield from seed_gateway(ledger)
    size = ledger.log.log.size()
    yield f"  log: {size} entries ({recorded} access events seeded now), anchored; see GET /v1/log/checkpoint"


DEMO_ACCESSES: tuple[tuple[str, str, str, tuple[str, ...], AccessMode], ...] = (
    # accessor, provider, resource code, fields, mode
    ("贵阳市民政局", "贵阳市公安局", "GY-GA-001", ("name", "id_number", "address"), AccessMode.MASKED),
    ("贵阳市人力资源和社会保障局", "贵阳市民政局", "GY-MZ-001", ("name", "id_number"), AccessMode.VERIFY),
    (
        "贵阳市住房和城乡建设局",
        "贵阳市人力资源和社会保障局",
        "GY-RS-003",
        ("id_number", "insured"),
        AccessMode.VERIFY,
    ),
    ("贵阳市统计局", "贵阳市市场监督管理局", "GY-SJ-002", ("district", "industry"), AccessMode.AGGREGATE),
    (
        "贵阳市市场监督管理局",
        "贵阳市住房和城乡建设局",
        "GY-ZJ-004",
        ("uscc", "property_count"),
        AccessMode.RAW,
    ),
)
# The catalog entries those accesses are of (code: name, level). An exchange platform's event is
# recorded only if it names a published resource, its provider and its level (ledger/log/reported.py).
DEMO_CATALOG: dict[str, tuple[str, int]] = {
    "GY-GA-001": ("人口基础信息", 4),  # level 4: each access is also recorded on chain
    "GY-MZ-001": ("低保对象信息", 2),
    "GY-RS-003": ("社会保险参保缴费信息", 2),
    "GY-SJ-002": ("市场主体行业分布", 2),
    "GY-ZJ-004": ("企业不动产持有信息", 2),
}
_SENSITIVE = {"name": MaskingRule.NAME, "id_number": MaskingRule.ID_NUMBER, "address": MaskingRule.ADDRESS}
DEMO_PURPOSES = {
    "GY-GA-001": "social_assistance",
    "GY-MZ-001": "employment_service",
    "GY-RS-003": "housing_administration",
    "GY-SJ-002": "statistics",
    "GY-ZJ-004": "market_supervision",
}


def seed_accesses(ledger: Ledger, count: int = 120) -> int:
    """Record a deterministic set of gateway accesses (once) and anchor them."""
    if ledger.log.log.size() > 0:
        return 0
    by_name = {p.name: p for p in ledger.parties.list()}
    operator = next(p for p in by_name.values() if p.kind is PartyKind.OPERATOR)
    levels = _seed_catalog(ledger, by_name)
    rng = random.Random(2017)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=7)
    events = []
    for i in range(count):
        accessor, provider, resource, fields, mode = DEMO_ACCESSES[i % len(DEMO_ACCESSES)]
        when = start + timedelta(minutes=83 * i + rng.randint(0, 40))
        denied = i % 17 == 16
        events.append(
            AccessEvent(
                event_id=f"demo-{i:04d}",
                kind=EventKind.DENIED if denied else EventKind.ACCESS,
                accessor=by_name[accessor].id,
                provider=by_name[provider].id,
                resource=resource,
                purpose=DEMO_PURPOSES[resource],
                fields=list(fields),
                mode=mode,
                record_count=0 if denied else rng.randint(1, 500),
                query_hash="0x" + hashlib.sha256(f"q{i}".encode()).hexdigest(),
                result_hash=None if denied else "0x" + hashlib.sha256(f"r{i}".encode()).hexdigest(),
                time=when,
                gateway="gy-exchange-01",
                reason="out_of_scope" if denied else None,
                level=levels[resource],
            )
        )
    ledger.log.record_gateway_events(operator, events)
    ledger.anchorer.anchor_once()
    return count


def _seed_catalog(ledger: Ledger, by_name: dict[str, Party]) -> dict[str, int]:
    """Publish the catalog entries of :data:`DEMO_ACCESSES` (each by its provider) unless they are
    there; return each code's level."""
    from ledger.sharing.catalog import FieldSpec, ResourceSpec
    from ledger.types import OpenType, ShareType

    existing = {r.code: r.level for r in ledger.catalog.find()}
    for _, provider, code, fields, _ in DEMO_ACCESSES:
        if code in existing:
            continue
        name, level = DEMO_CATALOG[code]
        spec = ResourceSpec(
            code=code,
            name=name,
            format="table",
            share_type=ShareType.CONDITIONAL,
            open_type=OpenType.NONE,
            level=level,
            update_frequency="monthly",
            legal_basis="《贵阳市政府数据共享开放条例》",
            fields=[
                FieldSpec(f, sensitive=f in _SENSITIVE, masking=_SENSITIVE.get(f, MaskingRule.NONE))
                for f in fields
            ],
        )
        existing[code] = ledger.catalog.create(by_name[provider], spec).level
    return existing


# The gateway part of the demo: real catalog entries with data sources generated for the city, real
# grants signed on chain, and real mediated accesses (so the log also holds accesses whose bundles
# carry the grant's signatures, and a citizen can look themselves up).
DEMO_RESOURCES: tuple[tuple[str, str, str, str, AccessMode, tuple[str, ...]], ...] = (
    # code, name, provider, table, mode granted to 贵阳市民政局, granted fields
    (
        "GY-GA-101",
        "常住人口基础信息",
        "贵阳市公安局",
        "population",
        AccessMode.MASKED,
        ("id_number", "name", "district", "address"),
    ),
    (
        "GY-RS-101",
        "社会保险参保信息",
        "贵阳市人力资源和社会保障局",
        "social_security",
        AccessMode.VERIFY,
        ("id_number",),
    ),
    (
        "GY-ZJ-101",
        "不动产登记信息",
        "贵阳市住房和城乡建设局",
        "real_estate",
        AccessMode.AGGREGATE,
        ("district", "is_first_home", "area_m2"),
    ),
)
DEMO_ROWS = 5000


def seed_gateway(ledger: Ledger) -> Iterator[str]:
    from ledger.gateway import demodata
    from ledger.gateway.service import AccessRequest
    from ledger.gateway.sources import SourceKind, SourceSpec
    from ledger.sharing.catalog import ResourceSpec
    from ledger.sharing.requests import Scope
    from ledger.types import OpenType, ShareType, Signing

    by_name = {p.name: p for p in ledger.parties.list()}
    if any(r.code == DEMO_RESOURCES[0][0] for r in ledger.catalog.find()):
        return
    requester = by_name["贵阳市民政局"]
    sources = ledger.settings.source_root_paths[0]
    sources.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC).replace(microsecond=0)
    for code, name, provider_name, table, mode, fields in DEMO_RESOURCES:
        provider = by_name[provider_name]
        path = sources / f"{table}.sqlite"
        demodata.write_sqlite(path, table, DEMO_ROWS)
        spec = ResourceSpec(
            code=code,
            name=name,
            format="table",
            share_type=ShareType.CONDITIONAL,
            open_type=OpenType.NONE,
            level=2,
            update_frequency="daily",
            legal_basis="《贵阳市政府数据共享开放条例》",
            fields=demodata.TABLES[table],
        )
        resource = ledger.catalog.create(provider, spec)
        ledger.gateway.register_source(
            provider, resource.id, SourceSpec(kind=SourceKind.SQL, location=f"sqlite:///{path}", table=table)
        )
        request = ledger.sharing.submit(
            requester,
            resource_id=resource.id,
            purpose_code="social_assistance",
            purpose_text="最低生活保障资格复核",
            legal_basis="《社会救助暂行办法》第十一条",
            scope=Scope(
                fields=list(fields),
                valid_from=now - timedelta(days=1),
                valid_until=now + timedelta(days=365),
                mode=mode,
                max_records=100,
                max_accesses=1000,
            ),
            signing=Signing.CUSTODIAL,
        )
        decided = ledger.sharing.decide(
            provider,
            request.id,
            approve=True,
            reason="符合共享条件",
            conditions=None,
            signing=Signing.CUSTODIAL,
        )
        assert decided.grant_id is not None
        if mode is AccessMode.VERIFY:
            people = [p["id_number"] for p in demodata.generate("population", 20)]
            access = AccessRequest(grant=decided.grant_id, subjects=people, key="id_number")
        elif mode is AccessMode.AGGREGATE:
            access = AccessRequest(
                grant=decided.grant_id, group_by=["district"], metrics=["count", "avg:area_m2"]
            )
        else:
            access = AccessRequest(grant=decided.grant_id, limit=20)
        delivery = ledger.gateway.access(requester, resource.id, access)
        grant = short_ref(decided.grant_id or "")
        yield f"  gateway: {code} {name} -> grant {grant}, access logged at {delivery.index}"
    yield from seed_opening(ledger, by_name, now)
    first = demodata.person(0)["id_number"]
    registrar = ledger.parties.get(ledger.bootstrap.registrar_id)
    token = ledger.subjects.issue_token(registrar, first)["token"]
    yield f"  subject {first}: GET /v1/subjects/accesses with token {token}"
    ledger.anchorer.anchor_once()


def seed_opening(ledger: Ledger, by_name: dict[str, Party], now: datetime) -> Iterator[str]:
    """契约式开放: the market-entity register opened to an enterprise under a three-party contract —
    the operator proposes, the enterprise and the provider sign (custodially) — with one access under
    it and the derived product the enterprise declared."""
    from ledger.gateway import demodata
    from ledger.gateway.service import AccessRequest
    from ledger.gateway.sources import SourceKind, SourceSpec
    from ledger.sharing.catalog import ResourceSpec
    from ledger.types import OpenType, ReleaseMode, ShareType, Signing

    provider = by_name["贵阳市市场监督管理局"]
    operator = next(p for p in by_name.values() if p.kind is PartyKind.OPERATOR)
    enterprise = next(p for p in by_name.values() if p.kind is PartyKind.ENTERPRISE)
    path = ledger.settings.source_root_paths[0] / "legal_persons.sqlite"
    demodata.write_sqlite(path, "legal_persons", DEMO_ROWS)
    spec = ResourceSpec(
        code="GY-SJ-201",
        name="市场主体登记信息",
        format="table",
        share_type=ShareType.CONDITIONAL,
        open_type=OpenType.CONTRACT,
        level=2,
        update_frequency="daily",
        legal_basis="《贵阳市政府数据共享开放条例》",
        fields=demodata.TABLES["legal_persons"],
    )
    resource = ledger.catalog.create(provider, spec)
    ledger.gateway.register_source(
        provider,
        resource.id,
        SourceSpec(kind=SourceKind.SQL, location=f"sqlite:///{path}", table="legal_persons"),
    )
    scope = {"fields": ["district", "industry", "registered_capital", "status"], "mode": "aggregate"}
    contract = ledger.open_contracts.propose(
        operator,
        enterprise_id=enterprise.id,
        resources=[resource.id],
        purpose_codes=["credit_assessment", "commercial_development"],
        scope={resource.id: {**scope, "max_records": 1000}},
        valid_from=now - timedelta(days=1),
        valid_until=now + timedelta(days=365),
        obligations=None,
        terms_hash="0x" + hashlib.sha256("《贵阳市政府数据开放协议》示范文本".encode()).hexdigest(),
        terms_uri=None,
        signing=Signing.CUSTODIAL,
    )
    for party in (enterprise, provider):
        contract = ledger.open_contracts.sign(party, contract.id, Signing.CUSTODIAL)
    access = AccessRequest(
        contract=contract.id, purpose="credit_assessment", group_by=["district"], metrics=["count"]
    )
    delivery = ledger.gateway.access(enterprise, resource.id, access)
    product = ledger.declarations.declare(
        enterprise,
        contract_id=contract.id,
        name="小微企业区域分布报告",
        description="按区县统计市场主体数量，供授信参考",
        inputs=[delivery.index],
        purpose="credit_assessment",
        release_mode=ReleaseMode.CUSTOMERS,
    )
    yield (
        f"  opening: GY-SJ-201 under contract {short_ref(contract.id)} ({contract.status.value}), "
        f"access logged at {delivery.index}, derived product at {product.log_index}"
    )
