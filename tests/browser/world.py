"""The browser tests' world: the demo city plus a pending request and an enterprise's accesses."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from playwright.sync_api import Page

from ledger.log.events import AccessEvent, AccessMode, EventKind
from ledger.runtime import Ledger
from ledger.sharing.requests import Scope
from ledger.types import PartyKind, Signing

# The demo parties the scenarios log in as.
NAMES = {
    "registrar": "贵阳市大数据发展管理委员会",
    "regulator": "贵阳市公安局网络安全保卫支队（数据安全监管）",
    "police": "贵阳市公安局",  # provider of GY-GA-101, answers the pending request
    "statistics": "贵阳市统计局",  # asks for GY-GA-101
    "civil": "贵阳市民政局",
    "enterprise": "贵州数联科技有限公司",
    "operator": "贵阳块数据城市建设有限公司",
}
CONTRACT = "OC-2026-0001"
BURST = 6  # refusals, above the default denied_burst threshold of 5 in 10 minutes


@dataclass
class ConsoleWorld:
    url: str
    ledger: Ledger
    tokens: dict[str, str]  # by the keys of NAMES
    ids: dict[str, str]
    pending_request: str  # 统计局 → 公安局's GY-GA-101, pending
    enterprise_accesses: list[int]  # anchored log indices, accessor = the enterprise


def tokens_of(lines: list[str]) -> dict[str, str]:
    """Each party's fresh token from the demo's printout (``  kind  name  token st_…``)."""
    by_name: dict[str, str] = {}
    kinds = {k.value for k in PartyKind}
    for line in lines:
        words = line.split()
        if len(words) >= 4 and words[0] in kinds and words[-2] == "token":
            by_name[" ".join(words[1:-2])] = words[-1]
    return {key: by_name[name] for key, name in NAMES.items()}


def extend(ledger: Ledger, ids: dict[str, str]) -> tuple[str, list[int]]:
    parties = {p.id: p for p in ledger.parties.list()}
    resource = next(r for r in ledger.catalog.find() if r.code == "GY-GA-101")
    now = datetime.now(UTC).replace(microsecond=0)
    request = ledger.sharing.submit(
        parties[ids["statistics"]],
        resource_id=resource.id,
        purpose_code="statistics",
        purpose_text="第七次人口普查数据比对",
        legal_basis="《中华人民共和国统计法》第七条",
        scope=Scope(
            fields=["district"],
            valid_from=now - timedelta(days=1),
            valid_until=now + timedelta(days=180),
            mode=AccessMode.AGGREGATE,
            max_records=1000,
            max_accesses=30,
        ),
        signing=Signing.CUSTODIAL,
    )
    events = [
        AccessEvent(
            event_id=f"console-enterprise-{n}",
            accessor=ids["enterprise"],
            provider=ids["police"],
            resource=resource.id,
            contract=CONTRACT,
            purpose="commercial_development",
            fields=["district"],
            mode=AccessMode.AGGREGATE,
            record_count=12 + n,
            query_hash="0x" + hashlib.sha256(f"console-q{n}".encode()).hexdigest(),
            result_hash="0x" + hashlib.sha256(f"console-r{n}".encode()).hexdigest(),
            time=now - timedelta(hours=3 - n),
            gateway="gy-exchange-01",
        )
        for n in range(2)
    ]
    burst = [  # refused again and again within minutes: the regulator's dashboard raises denied_burst
        AccessEvent(
            event_id=f"console-enterprise-denied-{n}",
            kind=EventKind.DENIED,
            accessor=ids["enterprise"],
            provider=ids["police"],
            resource=resource.id,
            purpose="commercial_development",
            fields=["id_number", "name"],
            mode=AccessMode.RAW,
            time=now - timedelta(minutes=90 - n),
            gateway="gy-exchange-01",
            reason="no_grant",
        )
        for n in range(BURST)
    ]
    appended = ledger.log.record_gateway_events(parties[ids["operator"]], [*burst, *events])[BURST:]
    assert ledger.anchorer.anchor_once() is not None
    return request.id, [a.index for a in appended]


def login(page: Page, world: ConsoleWorld, who: str) -> None:
    """Log in through the form, as a person would."""
    page.goto(f"{world.url}/console/login")
    page.fill("#token", world.tokens[who])
    page.click("button[type=submit]")
    page.wait_for_load_state("load")
