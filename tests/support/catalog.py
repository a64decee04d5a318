"""Catalog entries for tests that record events from an exchange platform: ``POST /v1/access-events``
takes only events naming a published resource, its provider and its level (ledger/log/reported.py)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.support.world import resource_body


def publish(
    client: TestClient, headers: dict[str, str], code: str, *, level: int = 2, **spec: Any
) -> dict[str, Any]:
    """Publish catalog entry ``code`` as the department whose ``headers`` are given (custodial
    signing, on the app's chain); returns the created resource (``id``, ``code``, ``level`` …)."""
    body = {**resource_body(code, level=level), **spec}
    r = client.post("/v1/resources", json=body, headers=headers)
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created
