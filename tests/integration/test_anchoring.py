"""The anchoring service: batches, crash recovery without double anchoring, catching up after a
chain outage (a real node process paused and resumed)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ledger.errors import ChainError
from ledger.log.note import verify_note
from ledger.log.store import NewEntry
from ledger.runtime import Ledger
from ledger.settings import Settings
from tests.support.evm_node import EvmNode, evm_node  # noqa: F401

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def _append(ledger: Ledger, start: int, end: int) -> None:
    ledger.log.log.append(
        [NewEntry(event_id=f"a{i}", kind="access", time=NOW, event={"n": i}) for i in range(start, end)]
    )


def _chain_count(ledger: Ledger) -> int:
    return int(ledger.chain.call(ledger.contracts["Anchor"].functions.count()))


def test_checkpoint_note_is_signed_and_matches_the_chain(settings: Settings) -> None:
    with Ledger.open(settings) as ledger:
        assert ledger.anchorer.anchor_once() is None, "nothing to anchor in an empty log"
        _append(ledger, 0, 5)
        checkpoint = ledger.anchorer.anchor_once()
        assert checkpoint is not None and checkpoint.size == 5
        parsed = verify_note(checkpoint.note, ledger.log.signer.verifier_key())
        assert parsed.size == 5 and parsed.root == checkpoint.root and parsed.origin == settings.origin
        assert ledger.chain.call(ledger.contracts["Anchor"].functions.rootAt(5)) == checkpoint.root
        assert ledger.anchorer.anchor_once() is None, "no second anchor of the same size"
        assert _chain_count(ledger) == 1


def test_crash_between_transaction_and_record_is_reconciled(settings: Settings) -> None:
    with Ledger.open(settings) as ledger:
        _append(ledger, 0, 7)
        log = ledger.log.log
        # the anchor transaction went out, then the process died before recording the checkpoint
        receipt = ledger.chain.transact(
            ledger.contracts["Anchor"].functions.anchor(7, log.root(7), []), ledger.log_key
        )
        assert log.latest_checkpoint() is None
    with Ledger.open(settings) as ledger:
        assert ledger.anchorer.anchor_once() is None  # reconciles, does not anchor again
        recorded = ledger.log.log.latest_checkpoint()
        assert recorded is not None and recorded.size == 7 and recorded.tx_hash == receipt.tx_hash
        assert _chain_count(ledger) == 1
        _append(ledger, 7, 9)
        assert ledger.anchorer.anchor_once() is not None and _chain_count(ledger) == 2


def test_loop_anchors_on_batch_size_without_waiting_for_the_interval(settings: Settings) -> None:
    tuned = settings.model_copy(update={"anchor_interval": 3600.0, "anchor_batch": 5})
    with Ledger.open(tuned) as ledger:
        ledger.anchorer.start()
        _append(ledger, 0, 5)
        ledger.anchorer.poke()
        deadline = time.monotonic() + 20
        while ledger.log.log.latest_checkpoint() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        checkpoint = ledger.log.log.latest_checkpoint()
        assert checkpoint is not None and checkpoint.size == 5


@pytest.mark.external_chain
def test_outage_then_catch_up_without_double_anchor(evm_node: EvmNode, tmp_path: Path) -> None:  # noqa: F811
    settings = Settings(
        data_dir=tmp_path / "d",
        chain=evm_node.url,
        bootstrap_token="st_outage",
        anchor_interval=0.2,
        chain_timeout=1.0,
    )
    with Ledger.open(settings) as ledger:
        ledger.anchorer.start()
        _append(ledger, 0, 3)
        deadline = time.monotonic() + 20
        while ledger.log.log.latest_checkpoint() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ledger.log.log.latest_checkpoint() is not None
        before = _chain_count(ledger)
        evm_node.pause()
        try:
            _append(ledger, 3, 40)  # ingestion continues during the outage: the store needs no chain
            deadline = time.monotonic() + 20
            while ledger.anchorer.failures == 0 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert ledger.anchorer.failures > 0 and ledger.anchorer.last_error is not None
        finally:
            evm_node.resume()
        resumed = time.monotonic()
        while time.monotonic() - resumed < 30:
            latest = ledger.log.log.latest_checkpoint()
            if latest is not None and latest.size == 40:
                break
            time.sleep(0.1)
        latest = ledger.log.log.latest_checkpoint()
        assert latest is not None and latest.size == 40, "caught up after the outage"
        assert time.monotonic() - resumed < 10, "anchoring catches up within 10 s of the chain returning"
        ledger.anchorer.stop()
        sizes = [
            int(ledger.chain.call(ledger.contracts["Anchor"].functions.sizeAt(i)))
            for i in range(_chain_count(ledger))
        ]
        assert sizes == sorted(set(sizes)), "every size anchored once, in order"
        assert _chain_count(ledger) <= before + 2


def test_chain_errors_surface_as_chain_error(settings: Settings) -> None:
    with Ledger.open(settings) as ledger:
        _append(ledger, 0, 2)
        stranger_call = ledger.contracts["Anchor"].functions.anchor(2, ledger.log.log.root(2), [])
        registrar = ledger.parties.signer(ledger.parties.get(ledger.bootstrap.registrar_id))
        with pytest.raises(ChainError) as info:
            ledger.chain.transact(stranger_call, registrar)
        assert info.value.code == "access_control_unauthorized_account"
