"""The seeded city scenario for ``sharetrail demo``: Guiyang's registrar, departments, the platform
operator, an enterprise and the regulator. Idempotent: a second start reuses what exists and
issues fresh tokens for the demo parties (tokens are stored only as hashes, so they cannot be shown
again otherwise)."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from ledger.identity.parties import NewParty, hash_token, new_token
from ledger.identity.uscc import make_uscc
from ledger.log.events import AccessEvent, AccessMode, EventKind
from ledger.runtime import Ledger
from ledger.store.models import Party
from ledger.types import PartyKind

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


def seed(ledger: Ledger) -> Iterator[str]:
    registrar = ledger.parties.get(ledger.bootstrap.registrar_id)
    token = new_token()
    with ledger.store.session() as session:
        row = session.get(Party, registrar.id)
        assert row is not None
        row.token_hash = hash_token(token)
    yield f"  registrar   {registrar.name:<40} token {token}"
    for kind, name, seq in DEMO_PARTIES:
        uscc = make_uscc(seq, division="520100", authority="1" if kind is not PartyKind.ENTERPRISE else "9")
        with ledger.store.session() as session:
            existing = session.scalar(select(Party).where(Party.uscc == uscc))
        if existing is None:
            _, token = ledger.parties.register(registrar, NewParty(kind, name, uscc))
        else:
            token = new_token()
            with ledger.store.session() as session:
                row = session.get(Party, existing.id)
                assert row is not None
                row.token_hash = hash_token(token)
        yield f"  {kind.value:<11} {name:<40} token {token}"
    recorded = seed_accesses(ledger)
    yield from seed_gateway(ledger)
    size = ledger.log.log.size()
    yield f"  log: {size} access events ({recorded} seeded now), anchored; see GET /v1/log/checkpoint"


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
                level=4 if resource == "GY-GA-001" and i < 5 else 2,
            )
        )
    ledger.log.record_gateway_events(operator, events)
    ledger.anchorer.anchor_once()
    return count


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
        yield f"  gateway: {code} {name} -> grant {decided.grant_id[:10]}…, access logged at {delivery.index}"
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
        f"  opening: GY-SJ-201 under contract {contract.id[:10]}… ({contract.status.value}), "
        f"access logged at {delivery.index}, derived product at {product.log_index}"
    )
