"""C2SP tlog-tiles under /v1/log/tlog: a client written from the spec alone rebuilds the anchored
root and inclusion proofs from the tiles, and every refusal has its status and code."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ledger.identity.uscc import make_uscc
from ledger.log import merkle
from ledger.log.layout import tlog_tile_path
from ledger.log.note import verify_note
from ledger.log.store import NewEntry
from ledger.runtime import Ledger
from ledger.settings import Settings
from tests.support.catalog import publish

BOOT = {"Authorization": "Bearer st_boot-tlog"}
PREFIX = "/v1/log/tlog"


@pytest.fixture
def env(tmp_path: Path, db_url: str) -> Iterator[dict[str, Any]]:
    settings = Settings(
        data_dir=tmp_path / "d", db_url=db_url, bootstrap_token="st_boot-tlog", anchor_loop=False
    )
    app = create_app(settings)
    with TestClient(app) as client:
        out: dict[str, Any] = {"client": client, "ledger": app.state.ledger}
        for n, kind in enumerate(("operator", "department", "regulator")):
            r = client.post(
                "/v1/parties", json={"kind": kind, "name": kind, "uscc": make_uscc(70 + n)}, headers=BOOT
            )
            out[kind] = {"Authorization": f"Bearer {r.json()['token']}", "id": r.json()["id"]}
        yield out


def fill(ledger: Ledger, start: int, end: int) -> None:
    """Append entries ``start … end - 1`` straight to the log store, in batches."""
    now = datetime.now(UTC)
    for b in range(start, end, 5000):
        ledger.log.log.append(
            [
                NewEntry(
                    event_id=f"t-{i}",
                    kind="access",
                    time=now,
                    event={"event_id": f"t-{i}", "kind": "access", "n": i, "pad": "x" * (i % 40)},
                    accessor="dept",
                    resource="res",
                )
                for i in range(b, min(end, b + 5000))
            ]
        )


def err(r: Any, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code, r.json()


class TileClient:
    """tlog-tiles from the spec's text only: fetch the tiles a tree of ``size`` has (full, or the
    rightmost partial of width ``floor(size / 256^L) mod 256``) and compute any Merkle Tree Hash."""

    def __init__(self, get: Callable[[str], bytes], size: int) -> None:
        self.get, self.size = get, size
        self.tiles: dict[tuple[int, int], list[bytes]] = {}

    def tile(self, level: int, index: int) -> list[bytes]:
        key = (level, index)
        if key not in self.tiles:
            below = self.size >> (8 * level)  # hashes of tree level 8·level in the tree
            width = None if (index + 1) * 256 <= below else below % 256
            data = self.get(f"/tile/{level}/{tlog_tile_path(index, width)}")
            assert len(data) == 32 * (width or 256)
            self.tiles[key] = [data[i : i + 32] for i in range(0, len(data), 32)]
        return self.tiles[key]

    def node(self, height: int, index: int) -> bytes:
        """MTH of the perfect subtree of ``2^height`` leaves starting at leaf ``index << height``."""
        level, within = divmod(height, 8)
        first = index << within  # its nodes at tree level 8·level
        hashes = self.tile(level, first >> 8)[first % 256 : first % 256 + (1 << within)]
        while len(hashes) > 1:
            hashes = [merkle.node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes), 2)]
        return hashes[0]

    def mth(self, lo: int, hi: int) -> bytes:
        """RFC 6962 §2.1 over leaves ``[lo, hi)``."""
        n = hi - lo
        if n & (n - 1) == 0 and lo % n == 0:
            return self.node(n.bit_length() - 1, lo // n)
        k = 1 << ((n - 1).bit_length() - 1)
        return merkle.node_hash(self.mth(lo, lo + k), self.mth(lo + k, hi))

    def inclusion(self, index: int, lo: int = 0, hi: int | None = None) -> list[bytes]:
        """RFC 6962 §2.1.1 PATH(m, D[lo:hi])."""
        hi = self.size if hi is None else hi
        if hi - lo == 1:
            return []
        k = 1 << ((hi - lo - 1).bit_length() - 1)
        if index < lo + k:
            return [*self.inclusion(index, lo, lo + k), self.mth(lo + k, hi)]
        return [*self.inclusion(index, lo + k, hi), self.mth(lo, lo + k)]


def getter(env: dict[str, Any], who: str = "department") -> Callable[[str], bytes]:
    def get(path: str) -> bytes:
        r = env["client"].get(PREFIX + path, headers={"Authorization": env[who]["Authorization"]})
        assert r.status_code == 200, (path, r.text)
        return bytes(r.content)

    return get


def test_the_specs_example_tree_of_70000(env: dict[str, Any]) -> None:
    """tlog-tiles: "a tree of size 70,000 will be represented by 273 full level 0 tiles, one
    partial level 0 tile of width 112, one full level 1 tile, one partial level 1 tile of width 17,
    and one partial level 2 tile of width 1" — each served, and nothing beyond them."""
    ledger, client = env["ledger"], env["client"]
    fill(ledger, 0, 70_000)
    ledger.anchorer.anchor_once()
    fill(ledger, 70_000, 70_300)  # recorded, not anchored: not served
    dept = {"Authorization": env["department"]["Authorization"]}

    note = client.get(PREFIX + "/checkpoint", headers=dept)
    assert note.status_code == 200 and note.headers["content-type"] == "text/plain; charset=utf-8"
    checkpoint = verify_note(note.text, ledger.log.signer.verifier_key())
    assert checkpoint.size == 70_000

    get = getter(env)
    for path, hashes in (
        ("/tile/0/272", 256),
        ("/tile/0/273.p/112", 112),
        ("/tile/1/000", 256),
        ("/tile/1/001.p/17", 17),
        ("/tile/2/000.p/1", 1),
        ("/tile/0/273.p/5", 5),  # a narrower partial of a tile inside the tree: the same hashes
    ):
        assert len(get(path)) == 32 * hashes, path
    r = client.get(PREFIX + "/tile/0/000", headers=dept)
    assert r.headers["content-type"] == "application/octet-stream"
    assert "immutable" in r.headers["cache-control"]
    for path in (
        "/tile/0/273",
        "/tile/0/273.p/113",
        "/tile/1/001",
        "/tile/1/001.p/18",
        "/tile/2/000.p/2",
        "/tile/3/000.p/1",
    ):
        err(client.get(PREFIX + path, headers=dept), 404, "tile_not_found")

    tiles = TileClient(get, checkpoint.size)
    assert tiles.mth(0, checkpoint.size) == checkpoint.root
    for index in (0, 255, 256, 65_535, 65_536, 69_999, 12_345):
        entry = ledger.log.log.entry(index).entry
        proof = tiles.inclusion(index)
        merkle.verify_inclusion(merkle.leaf_hash(entry), index, checkpoint.size, proof, checkpoint.root)
        assert proof == ledger.log.log.inclusion_proof(index, checkpoint.size)
    # the level-0 tile holds the leaf hashes of the entry bundle beside it
    bundle = client.get(
        PREFIX + "/tile/entries/273.p/112",
        headers={"Authorization": env["regulator"]["Authorization"], "Accept-Encoding": "identity"},
    )
    assert bundle.status_code == 200 and "content-encoding" not in bundle.headers
    entries, data = [], bundle.content
    while data:
        n = int.from_bytes(data[:2], "big")
        entries.append(data[2 : 2 + n])
        data = data[2 + n :]
    assert len(entries) == 112
    assert [merkle.leaf_hash(e) for e in entries] == tiles.tile(0, 273)
    assert entries[0] == ledger.log.log.entry(273 * 256).entry


def test_checkpoints_grow_and_tiles_stay_the_same(env: dict[str, Any]) -> None:
    """A partial tile of an older checkpoint is still served, equal to the start of the full
    tile; a tree of 256 has one full level-0 tile and a level-1 tile of width 1 (the spec)."""
    ledger, client = env["ledger"], env["client"]
    dept = {"Authorization": env["department"]["Authorization"]}
    err(client.get(PREFIX + "/checkpoint", headers=dept), 404, "no_checkpoint")
    err(client.get(PREFIX + "/tile/0/000.p/1", headers=dept), 404, "tile_not_found")
    fill(ledger, 0, 100)
    ledger.anchorer.anchor_once()
    old = getter(env)("/tile/0/000.p/100")
    fill(ledger, 100, 256)
    ledger.anchorer.anchor_once()
    get = getter(env)
    full = get("/tile/0/000")
    assert full[: len(old)] == old == get("/tile/0/000.p/100")
    assert get("/tile/1/000.p/1") == merkle.root([full[i : i + 32] for i in range(0, 8192, 32)])
    tiles = TileClient(get, 256)
    assert tiles.mth(0, 256) == ledger.log.log.root(256)


def test_refusals(env: dict[str, Any]) -> None:
    ledger, client = env["ledger"], env["client"]
    fill(ledger, 0, 300)
    ledger.anchorer.anchor_once()
    dept = {"Authorization": env["department"]["Authorization"]}
    for path in (
        "/tile/0/5",  # not three digits
        "/tile/0/x000/005",  # a superfluous leading group
        "/tile/0/001.p/0",
        "/tile/0/001.p/256",
        "/tile/0/001.p/01",
        "/tile/0/000.p",
        "/tile/0/abc",
        "/tile/64/000",  # levels are 0…63
        "/tile/entries/x0/000",
    ):
        err(
            client.get(PREFIX + path, headers=dept if "entries" not in path else BOOT),
            422,
            "invalid_tile_path",
        )
    assert client.get(PREFIX + "/tile/0/000").status_code == 401
    assert client.get(PREFIX + "/checkpoint").status_code == 401
    err(client.get(PREFIX + "/tile/entries/000", headers=dept), 403, "forbidden_role")
    err(client.get(PREFIX + "/tile/entries/001", headers=BOOT), 404, "tile_not_found")  # 256…511 > 300
    ok = client.get(PREFIX + "/tile/entries/001.p/44", headers={**BOOT, "Accept-Encoding": "gzip"})
    assert ok.status_code == 200 and ok.headers["content-encoding"] == "gzip"
    assert ok.content.startswith(len(ledger.log.log.entry(256).entry).to_bytes(2, "big"))


def test_an_entry_too_large_for_a_bundle_is_refused_by_name(env: dict[str, Any]) -> None:
    """An access with 1,000 subject hashes is ~70 KB: more than a uint16 length can say."""
    client, ledger = env["client"], env["ledger"]
    subjects = ["0x" + hashlib.sha256(b"%d" % i).hexdigest() for i in range(1000)]
    publish(client, {"Authorization": env["department"]["Authorization"]}, "GY-RS-003")
    event = {
        "event_id": "big-1",
        "accessor": env["department"]["id"],
        "resource": "GY-RS-003",
        "purpose": "employment_service",
        "time": datetime.now(UTC).isoformat(),
        "gateway": "gw",
        "subjects": subjects,
    }
    op = {"Authorization": env["operator"]["Authorization"]}
    assert client.post("/v1/access-events", json=[event], headers=op).status_code == 201
    ledger.anchorer.anchor_once()
    assert len(ledger.log.log.entry(0).entry) > 0xFFFF
    r = client.get(PREFIX + "/tile/entries/000.p/1", headers=op)
    err(r, 422, "entry_too_large")
    assert "log entry 0" in r.json()["error"]["message"]
    assert len(getter(env)("/tile/0/000.p/1")) == 32  # its hash is served as any other


def test_a_damaged_node_table_is_named(env: dict[str, Any], db_url: str) -> None:
    """A hash missing inside the anchored tree (someone deleted it past the triggers) is reported
    as the missing node, not as a tile the log does not have."""
    ledger, client = env["ledger"], env["client"]
    fill(ledger, 0, 256)
    ledger.anchorer.anchor_once()
    with ledger.store.engine.begin() as conn:
        if db_url.startswith("sqlite"):
            conn.exec_driver_sql("DROP TRIGGER log_nodes_no_delete")
        else:
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")  # bypasses the triggers
        conn.exec_driver_sql("DELETE FROM log_nodes WHERE id = 7")  # leaf 7's hash
    ledger.log.log.cache.data.clear()
    r = client.get(PREFIX + "/tile/0/000", headers={"Authorization": env["department"]["Authorization"]})
    err(r, 404, "missing_node")
    assert "level=0, index=7" in r.json()["error"]["message"]
