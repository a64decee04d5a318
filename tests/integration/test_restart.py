"""The embedded chain and the store survive a restart on the same data directory."""

from __future__ import annotations

from ledger.identity.parties import NewParty
from ledger.identity.uscc import make_uscc
from ledger.runtime import Ledger
from ledger.settings import Settings
from ledger.store.models import Party
from ledger.types import PartyKind


def test_restart_keeps_parties_contracts_and_chain_state(settings: Settings) -> None:
    with Ledger.open(settings) as first:
        registrar = first.parties.get(first.bootstrap.registrar_id)
        party, token = first.parties.register(
            registrar, NewParty(PartyKind.DEPARTMENT, "贵阳市统计局", make_uscc(900))
        )
        other, other_token = first.parties.register(
            registrar, NewParty(PartyKind.ENTERPRISE, "数联科技", make_uscc(901))
        )
        first.parties.set_suspended(registrar, other.id, True, "audit")
        registry_address = first.contracts["PartyRegistry"].address
        block = first.chain.block_number()
        count = first.chain.call(first.contracts["PartyRegistry"].functions.partyCount())
        assert count == 3
    with Ledger.open(settings) as second:
        assert second.contracts["PartyRegistry"].address == registry_address, "contracts are deployed once"
        assert second.chain.block_number() == block, "no block lost or re-mined"
        assert second.bootstrap.registrar_token is None
        registry = second.contracts["PartyRegistry"]
        assert second.chain.call(registry.functions.partyCount()) == 3
        assert second.parties.authenticate(token).id == party.id
        info = second.chain.call(registry.functions.partyOf(party.address))
        assert info[0] == PartyKind.DEPARTMENT.chain_value and info[1] is False
        assert second.chain.call(registry.functions.isActive(other.address)) is False
        # the chain keeps working after the restart: nonces continue where they were
        reg = second.parties.get(second.bootstrap.registrar_id)
        second.parties.set_suspended(reg, other.id, False)
        assert second.parties.authenticate(other_token).id == other.id
        with second.store.session() as session:
            stored = session.get(Party, party.id)
            assert stored is not None and stored.key_ciphertext is not None


def test_lost_chain_is_refused_not_silently_redeployed(settings: Settings) -> None:
    with Ledger.open(settings):
        pass
    chain_file = settings.data_dir / "chain.sqlite"
    for suffix in ("", "-wal", "-shm"):
        path = chain_file.with_name(chain_file.name + suffix)
        if path.exists():
            path.unlink()
    import pytest

    from ledger.errors import ChainError

    with pytest.raises(ChainError) as info:
        Ledger.open(settings)
    assert info.value.code == "contract_missing"
