"""The seeded city scenario for ``sharetrail demo``: Guiyang's registrar, departments, the platform
operator, an enterprise and the regulator. Idempotent: a second start reuses what exists and
issues fresh tokens for the demo parties (tokens are stored only as hashes, so they cannot be shown
again otherwise)."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import select

from ledger.identity.parties import NewParty, hash_token, new_token
from ledger.identity.uscc import make_uscc
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
