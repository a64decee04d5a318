"""``sharetrail monitor``: the whole log checked from outside — over real HTTP, against the chain the
server exposes at /rpc — and every way the operator could cheat it named."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from api.app import create_app
from api.cli import app as cli
from ledger.errors import VerificationError
from ledger.identity.uscc import make_uscc
from ledger.log.layout import node_key
from ledger.log.monitor import monitor, tlog_tiles
from ledger.log.note import NoteSigner
from ledger.log.store import NewEntry
from ledger.runtime import Ledger
from ledger.settings import Settings
from tests.support.live import free_port, serve

BOOT = "st_boot-monitor"


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, Any]]:
    settings = Settings(data_dir=tmp_path / "d", bootstrap_token=BOOT, anchor_loop=False)
    app = create_app(settings)
    with serve(app) as base:
        out: dict[str, Any] = {"url": base, "rpc": base + "/rpc", "ledger": app.state.ledger, "tmp": tmp_path}
        for n, kind in enumerate(("department", "regulator")):
            r = httpx.post(
                base + "/v1/parties",
                json={"kind": kind, "name": kind, "uscc": make_uscc(80 + n)},
                headers={"Authorization": f"Bearer {BOOT}"},
            )
            out[kind] = r.json()["token"]
        yield out


def grow(ledger: Ledger, end: int) -> None:
    """Append entries up to ``end`` and anchor them."""
    log = ledger.log.log
    now = datetime.now(UTC)
    for b in range(log.size(), end, 5000):
        log.append(
            [
                NewEntry(
                    event_id=f"m-{i}",
                    kind="access",
                    time=now,
                    event={"event_id": f"m-{i}", "kind": "access", "n": i},
                    accessor="dept",
                    resource="res",
                )
                for i in range(b, min(end, b + 5000))
            ]
        )
    assert ledger.anchorer.anchor_once() is not None


def run(env: dict[str, Any], who: str = "department", **kw: Any) -> Any:
    return monitor(env["url"], env[who], env["rpc"], **kw)


def fails(code: str, env: dict[str, Any], who: str = "department", **kw: Any) -> str:
    with pytest.raises(VerificationError) as info:
        run(env, who, **kw)
    assert info.value.code == code, info.value.message
    return info.value.message


def tamper(ledger: Ledger, *statements: str) -> None:
    """A privileged user past the append-only triggers (SQLite)."""
    with ledger.store.engine.begin() as conn:
        for trigger in (
            "log_nodes_no_update",
            "log_entries_no_update",
            "checkpoints_no_update",
            "checkpoints_no_delete",
        ):
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {trigger}")
        for statement in statements:
            conn.exec_driver_sql(statement)


def test_intact_log_grows_append_only(env: dict[str, Any]) -> None:
    ledger, state = env["ledger"], env["tmp"] / "state.json"
    grow(ledger, 70_000)
    report = run(env, state_path=state)
    assert (report.size, report.tiles, report.previous_size) == (70_000, len(tlog_tiles(70_000)), None)
    assert report.root == ledger.log.log.root(70_000)
    grow(ledger, 70_500)
    again = run(env, state_path=state)
    assert (again.size, again.previous_size) == (70_500, 70_000)
    with_entries = run(env, "regulator", state_path=state, entries=True)
    assert with_entries.entries == 70_500
    fails("log_forbidden", env, entries=True)  # entry bundles are for regulators, registrar, operator


def test_an_edited_leaf_or_entry_is_caught(env: dict[str, Any]) -> None:
    ledger = env["ledger"]
    grow(ledger, 600)
    assert run(env, "regulator", entries=True).entries == 600
    tamper(ledger, "UPDATE log_entries SET entry = CAST('{\"n\":3}' AS BLOB) WHERE idx = 3")
    assert "log entry 3 " in fails("entry_mismatch", env, "regulator", entries=True)
    run(env)  # the tree itself is untouched
    tamper(ledger, f"UPDATE log_nodes SET hash = zeroblob(32) WHERE id = {node_key(0, 300)}")  # leaf 300
    assert "tile 0/001" in fails("tile_mismatch", env)


def test_rewritten_history_and_a_forged_checkpoint(env: dict[str, Any]) -> None:
    ledger, state = env["ledger"], env["tmp"] / "state.json"
    grow(ledger, 300)
    run(env, state_path=state)
    good = state.read_text()
    state.write_text(good.replace('"size": 300', '"size": 299'))  # a different tree of 299 seen before
    fails("not_append_only", env, state_path=state)
    state.write_text(good.replace('"size": 300', '"size": 301'))
    assert "shrank" in fails("not_append_only", env, state_path=state)
    state.write_text(good)
    # the operator signs a checkpoint the chain never anchored …
    forged = ledger.anchorer.note_for(400, b"\x11" * 32)
    contract, chain_id = ledger.anchorer.contract.address, ledger.chain.chain_id
    tamper(
        ledger,
        "INSERT INTO checkpoints (size, root, chain_id, contract, tx_hash, block_number, anchored_at, note) "
        f"VALUES (400, zeroblob(32), {chain_id}, '{contract}', '0x00', 1, '2026-12-07 00:00:00', '{forged}')",
    )
    fails("root_not_anchored", env, state_path=state)
    # … or a different root for a size the chain did anchor
    forged = ledger.anchorer.note_for(300, b"\x22" * 32)
    tamper(ledger, "DELETE FROM checkpoints WHERE size = 400", f"UPDATE checkpoints SET note = '{forged}'")
    fails("anchored_root_mismatch", env, state_path=state)


def test_keys_chain_and_server(env: dict[str, Any]) -> None:
    ledger, state = env["ledger"], env["tmp"] / "state.json"
    fails("root_not_anchored", env)  # nothing anchored yet
    grow(ledger, 10)
    other = NoteSigner.generate(ledger.anchorer.origin).verifier_key()
    fails("unknown_key", env, key=other)
    run(env, state_path=state)  # pins the server's key
    fails("key_changed", env, key=other, state_path=state)
    with pytest.raises(VerificationError) as info:
        monitor(env["url"], env["department"], f"http://127.0.0.1:{free_port()}/rpc")
    assert info.value.code == "chain_unreachable"
    with pytest.raises(VerificationError) as info:
        monitor(f"http://127.0.0.1:{free_port()}", env["department"], env["rpc"])
    assert info.value.code == "log_unreachable"
    with pytest.raises(VerificationError) as info:
        monitor(env["url"], "st_not-a-token", env["rpc"])
    assert info.value.code == "log_unauthorized"
    state.write_text("[1, 2]")
    fails("bad_state", env, state_path=state)


def test_cli(env: dict[str, Any], tmp_path: Path) -> None:
    grow(env["ledger"], 1000)
    args = ["monitor", "--url", env["url"], "--rpc", env["rpc"], "--token", env["regulator"], "--entries"]
    ok = CliRunner().invoke(cli, args)
    assert ok.exit_code == 0, ok.output
    assert "OK: " in ok.output and "size 1,000" in ok.output and "1,000 entries match" in ok.output
    lone = CliRunner().invoke(cli, [*args, "--since-last"])
    assert lone.exit_code == 2 and "--since-last needs --state" in lone.output
    stateful = [*args, "--state", str(tmp_path / "state.json")]
    first, again = CliRunner().invoke(cli, stateful), CliRunner().invoke(cli, stateful)
    assert "grew" not in first.output and "unchanged" not in first.output, first.output
    assert again.exit_code == 0 and "matches all 5 tiles; unchanged since the last run;" in again.output
    tamper(env["ledger"], "UPDATE log_entries SET entry = CAST('{}' AS BLOB) WHERE idx = 999")
    bad = CliRunner().invoke(cli, args)
    assert bad.exit_code == 1 and "FAILED entry_mismatch: log entry 999 " in bad.output


def test_since_last_reads_only_what_is_new(env: dict[str, Any]) -> None:
    """``since_last`` trusts the part checked last time through its root (recomputed from today's
    higher tiles) and reads only the new leaves' tiles and entries; a full run reads everything, so
    it also sees an old entry edited in the database."""
    ledger, state = env["ledger"], env["tmp"] / "state.json"
    grow(ledger, 1000)
    assert run(env, "regulator", state_path=state, entries=True).entries == 1000
    grow(ledger, 1300)
    tamper(ledger, "UPDATE log_entries SET entry = CAST('{}' AS BLOB) WHERE idx = 3")
    quick = run(env, "regulator", state_path=state, entries=True, since_last=True)
    # tiles 0/003 (768…1023, holds leaf 1000 on) to 0/005.p/20, and the level-1 tile
    assert (quick.previous_size, quick.entries, quick.tiles) == (1000, 1300 - 768, 4)
    assert "log entry 3 " in fails("entry_mismatch", env, "regulator", state_path=state, entries=True)
    state.unlink()
    assert "log entry 3 " in fails("entry_mismatch", env, "regulator", entries=True, workers=1)


def test_an_entry_too_large_for_a_bundle_is_read_from_the_json_route(env: dict[str, Any]) -> None:
    """The server refuses a bundle holding an entry over 65,535 bytes (422 entry_too_large); the
    monitor reads that tile's entries from /v1/log/entries instead and still checks each one."""
    ledger = env["ledger"]
    big = {"event_id": "big-0", "kind": "access", "pad": "x" * 70_000}
    ledger.log.log.append(
        [
            NewEntry(
                event_id="big-0", kind="access", time=datetime.now(UTC), event=big, accessor="d", resource="r"
            )
        ]
    )
    grow(ledger, 300)
    assert len(ledger.log.log.entry(0).entry) > 0xFFFF
    assert run(env, "regulator", entries=True).entries == 300
    # still too large for a bundle, other bytes: caught on the JSON route
    forged = """CAST('{"pad":"' || replace(hex(zeroblob(35000)), '0', 'y') || '"}' AS BLOB)"""
    tamper(ledger, f"UPDATE log_entries SET entry = {forged} WHERE idx = 0")
    assert len(ledger.log.log.entry(0).entry) > 0xFFFF
    assert "log entry 0 " in fails("entry_mismatch", env, "regulator", entries=True)
