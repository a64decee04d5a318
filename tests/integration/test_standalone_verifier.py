"""docs/verify_bundle_standalone.py — the third party's verifier that uses only web3.py and hashlib —
accepts a real gateway bundle through a chain endpoint and refuses edited ones."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.integration.test_gateway import env, grant  # noqa: F401 - the fixture
from tests.support.live import serve

SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "verify_bundle_standalone.py"


def run(bundle: dict[str, Any], rpc: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    # -I: isolated mode, so nothing of the project is importable from the script's directory or env.
    return subprocess.run(
        [sys.executable, "-I", str(SCRIPT), str(path), rpc], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_standalone_verifier(env: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    c: TestClient = env["client"]
    gid = grant(env)
    r = c.get(f"/v1/data/{env['GY-RS-001']}", params={"grant": gid, "limit": 2}, headers=env["minzheng"])
    index = int(r.headers["X-Access-Event"])
    env["ledger"].anchorer.anchor_once()
    bundle = c.get(f"/v1/proofs/access/{index}", headers=env["minzheng"]).json()
    assert bundle["grant"]["grant_id"] == gid
    with serve(create_app(env["settings"], ledger=env["ledger"])) as url:
        rpc = f"{url}/rpc"
        ok = run(bundle, rpc, tmp_path)
        assert ok.returncode == 0 and ok.stdout.startswith("OK"), ok.stdout + ok.stderr

        def refused(mutate: Any, why: str) -> None:
            bad = copy.deepcopy(bundle)
            mutate(bad)
            out = run(bad, rpc, tmp_path)
            assert out.returncode == 1 and why in out.stdout, out.stdout + out.stderr

        refused(lambda b: b["entry"].update(purpose="law_enforcement"), "inclusion proof")
        refused(lambda b: b.update(root="0x" + "00" * 32), "inclusion proof")
        refused(lambda b: b["grant"]["scope"].update(max_records=10**6), "scope")
        other = "0x" + "11" * 65
        refused(lambda b: b["grant"]["request"].update(signature=other), "")
        decision = bundle["grant"]["decision"]
        refused(
            lambda b: b["grant"].update(
                decision={**decision, "signature": bundle["grant"]["request"]["signature"]}
            ),
            "provider",
        )
