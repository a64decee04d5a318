"""The demo scenario seeds parties and accesses that are already anchored, idempotently."""

from __future__ import annotations

from ledger.demo import DEMO_PARTIES, seed
from ledger.log.verify import verify
from ledger.runtime import Ledger
from ledger.settings import Settings


def test_demo_seed_is_anchored_verifiable_and_idempotent(settings: Settings) -> None:
    with Ledger.open(settings) as ledger:
        lines = list(seed(ledger))
        assert len(lines) == len(DEMO_PARTIES) + 2 and all("token st_" in line for line in lines[:-1])
        assert ledger.log.log.size() == 120
        checkpoint = ledger.log.log.latest_checkpoint()
        assert checkpoint is not None and checkpoint.size == 120
        assert verify(ledger.store, ledger.chain, ledger.contracts["Anchor"]).intact
    with Ledger.open(settings) as again:
        lines = list(seed(again))
        assert "0 seeded now" in lines[-1] and again.log.log.size() == 120
