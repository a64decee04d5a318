"""The server freezes its start-up objects out of the garbage collector while it serves, and
unfreezes them when it stops (``ledger.runtime.frozen_heap``)."""

from __future__ import annotations

import gc

from fastapi.testclient import TestClient

from api.app import create_app
from ledger.runtime import frozen_heap
from ledger.settings import Settings


def test_start_up_objects_are_frozen_while_serving(settings: Settings) -> None:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200
        assert gc.get_freeze_count() > 10_000  # the ledger, the chain, SQLAlchemy's metadata
    assert gc.get_freeze_count() == 0


def test_frozen_heap_unfreezes_on_error() -> None:
    gc.unfreeze()
    try:
        with frozen_heap():
            assert gc.get_freeze_count() > 0
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert gc.get_freeze_count() == 0
