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
