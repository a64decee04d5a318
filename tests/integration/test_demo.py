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
        assert "(0 access events seeded now)" in lines[-1] and again.log.log.size() == size


def _tokens(lines: list[str]) -> dict[str, str]:
    return {
        line.split()[0] + " " + line.split()[1]: line.split("token ", 1)[1].split()[0]
        for line in lines
        if " token st_" in line and not line.startswith("  subject")
    }


def test_every_printed_token_works_and_a_restart_prints_the_same(settings: Settings) -> None:
    """The registrar's token printed by the demo used to be replaced a moment later (401), and each
    restart replaced every token; now each party's token is derived from the data directory's sealed
    secret: the same on every start, and each one authenticates as its party."""
    with Ledger.open(settings) as ledger:
        first = _tokens(list(seed(ledger)))
        assert len(first) == len(DEMO_PARTIES) + 1
        for label, token in first.items():
            party = ledger.parties.authenticate(token)
            assert label.startswith(party.kind.value) and label.endswith(party.name), (label, party.name)
    with Ledger.open(settings) as again:
        assert _tokens(list(seed(again))) == first
        assert again.parties.authenticate(
            first["registrar " + again.parties.get(again.bootstrap.registrar_id).name]
        )


def test_the_demo_keeps_a_chosen_bootstrap_token(settings: Settings) -> None:
    chosen = settings.model_copy(update={"bootstrap_token": "st_chosen-by-the-operator"})
    with Ledger.open(chosen) as ledger:
        lines = list(seed(ledger))
        registrar = next(line for line in lines if line.startswith("  registrar"))
        assert registrar.endswith("token st_chosen-by-the-operator  (SHARETRAIL_BOOTSTRAP_TOKEN)")
        assert ledger.parties.authenticate("st_chosen-by-the-operator").kind.value == "registrar"
