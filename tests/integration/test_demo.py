"""The demo scenario seeds parties and accesses that are already anchored, idempotently."""

from __future__ import annotations

from ledger.demo import DEMO_PARTIES, DEMO_RESOURCES, seed
from ledger.gateway.demodata import person
from ledger.log.verify import verify
from ledger.runtime import Ledger
from ledger.settings import Settings


def test_demo_seed_is_anchored_verifiable_and_idempotent(settings: Settings) -> None:
    with Ledger.open(settings) as ledger:
        lines = list(seed(ledger))
        tokens = [line for line in lines if "token st_" in line]
        assert len(tokens) == len(DEMO_PARTIES) + 2  # the parties, the registrar, one data subject
        gateway = [line for line in lines if line.startswith("  gateway:")]
        assert len(gateway) == len(DEMO_RESOURCES)
        size = ledger.log.log.size()
        assert size > 120
        checkpoint = ledger.log.log.latest_checkpoint()
        assert checkpoint is not None and checkpoint.size == size
        assert verify(ledger.store, ledger.chain, ledger.contracts["Anchor"]).intact
        subject = ledger.subjects.hash_of(person(0)["id_number"])
        found = ledger.subjects.accesses(bytes.fromhex(subject[2:]))["accesses"]
        assert len(found) == 2 and {a["mode"] for a in found} == {"masked", "verify"}
    with Ledger.open(settings) as again:
        lines = list(seed(again))
        assert "0 seeded now" in lines[-1] and again.log.log.size() == size
