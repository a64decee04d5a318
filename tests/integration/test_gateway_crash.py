"""Rule 4 under a crash: the gateway process killed between logging an access and responding leaves
a logged event and delivers no data — never data without an event.

The server runs as its own process (uvicorn) on the same data directory; a fault hook, set only by
this test's launcher, kills it with ``os._exit`` right after the event's transaction committed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ledger.runtime import Ledger
from ledger.settings import Settings
from tests.integration.test_gateway import FIELDS, grant, people, write_csv
from tests.support.live import free_port

LAUNCHER = """
import os, sys, uvicorn
from api.app import create_app
from ledger.runtime import Ledger
from ledger.settings import Settings

ledger = Ledger.open(Settings())
ledger.gateway.after_log = lambda index: os._exit(9)  # killed after the commit, before the response
app = create_app(Settings(), ledger=ledger)
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def test_kill_between_log_and_response(tmp_path: Path) -> None:
    boot = "st_boot-crash"
    settings = Settings(data_dir=tmp_path / "d", bootstrap_token=boot, anchor_loop=False)
    write_csv(settings.data_dir / "sources" / "ss.csv", people())
    env: dict[str, Any] = {}
    app = create_app(settings)
    with TestClient(app) as client:
        env["client"] = client
        for name in ("renshe", "minzheng"):
            r = client.post(
                "/v1/parties",
                json={"kind": "department", "name": name, "uscc": _uscc(name)},
                headers={"Authorization": f"Bearer {boot}"},
            )
            env[name] = {"Authorization": f"Bearer {r.json()['token']}"}
            env[name + "_id"] = r.json()["id"]
        body = {
            "code": "GY-RS-009",
            "name": "参保信息",
            "format": "table",
            "share_type": "conditional",
            "open_type": "none",
            "level": 2,
            "update_frequency": "monthly",
            "legal_basis": "《社会保险法》",
            "fields": FIELDS,
        }
        env["GY-RS-001"] = client.post("/v1/resources", json=body, headers=env["renshe"]).json()["id"]
        r = client.put(
            f"/v1/resources/{env['GY-RS-001']}/source",
            json={"kind": "csv", "location": str(settings.data_dir / "sources" / "ss.csv")},
            headers=env["renshe"],
        )
        assert r.status_code == 200, r.text
        gid = grant(env)
        size_before = app.state.ledger.log.log.size()

    port = free_port()
    child_env = {**os.environ, "SHARETRAIL_DATA_DIR": str(settings.data_dir), "SHARETRAIL_ANCHOR_LOOP": "0"}
    proc = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(port)], env=child_env)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
        received = b""
        with (
            pytest.raises(httpx.TransportError),
            httpx.stream(
                "GET", f"{url}/v1/data/{env['GY-RS-001']}", params={"grant": gid}, headers=env["minzheng"]
            ) as response,
        ):
            received = response.read()
        assert received == b""  # no data left the gateway
        assert proc.wait(timeout=30) == 9
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    with Ledger.open(settings) as ledger:
        assert ledger.log.log.size() == size_before + 1
        logged = json.loads(ledger.log.log.entry(size_before).entry)
        assert logged["kind"] == "access" and logged["grant"] == gid
        assert logged["accessor"] == env["minzheng_id"] and logged["record_count"] == len(people())


def _uscc(name: str) -> str:
    from ledger.identity.uscc import make_uscc

    return make_uscc(700 + len(name))
