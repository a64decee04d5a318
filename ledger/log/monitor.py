"""Watch a sharetrail log from outside: ``sharetrail monitor`` (docs/log.md, "Monitoring from outside").

A regulator — or anyone with an API token and a chain endpoint — checks the whole log without the
database, through the C2SP tlog-tiles routes (``/v1/log/tlog/…``):

1. the latest checkpoint's signed note verifies under the operator's key (pinned: given, or taken
   from the server on the first run and kept in the state file);
2. the anchor contract holds that root for that size (``rootAt``; the chain id is the one the log
   names);
3. every tile hashes to its entry in the tile above, and the tiles give the signed root — so every
   leaf hash the log serves is the one that was anchored;
4. with a state file, the checkpoint seen last time is a prefix of this one (its root recomputed
   from today's tiles): nothing anchored was rewritten, the log only grew;
5. with ``entries``, every entry (entry bundles; the JSON route for one too large for a bundle)
   hashes to its leaf in the level-0 tiles — the access events themselves are what was anchored.

Any failure raises :class:`~ledger.errors.VerificationError` naming what and where.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from ledger.canonical import canonical_json
from ledger.errors import VerificationError
from ledger.log import merkle
from ledger.log.bundle import anchored_root
from ledger.log.layout import TILE_WIDTH, tlog_tile_path
from ledger.log.note import verify_note

TLOG = "/v1/log/tlog"
_SLICE = 1024  # tiles fetched and checked together
Progress = Callable[[int, int], None]  # (tiles done, tiles in all)


@dataclass(frozen=True)
class MonitorReport:
    origin: str
    size: int
    root: bytes
    tiles: int
    entries: int  # entries checked against their leaf hashes (0 without ``entries``)
    previous_size: int | None  # the size seen last time (state file), checked to be a prefix


def tlog_tiles(size: int) -> list[tuple[int, int, int]]:
    """``(level, index, width)`` of every tlog tile of a tree of ``size``: the full ones, and the
    partial one of width ``floor(size / 256^level) mod 256`` where there is one."""
    out = []
    level = 0
    while size >> (8 * level):
        below = size >> (8 * level)
        out += [(level, n, TILE_WIDTH) for n in range(below // TILE_WIDTH)]
        if below % TILE_WIDTH:
            out.append((level, below // TILE_WIDTH, below % TILE_WIDTH))
        level += 1
    return out


class TileTree:
    """The Merkle tree of ``size`` leaves as its tlog tiles, fetched through ``fetch`` (a tile path
    under the prefix → its bytes) once each."""

    def __init__(self, fetch: Callable[[str], bytes], size: int) -> None:
        self.fetch, self.size = fetch, size
        self.tiles: dict[tuple[int, int], list[bytes]] = {}

    def tile(self, level: int, index: int) -> list[bytes]:
        key = (level, index)
        if key not in self.tiles:
            below = self.size >> (8 * level)
            width = None if (index + 1) * TILE_WIDTH <= below else below % TILE_WIDTH
            path = f"/tile/{level}/{tlog_tile_path(index, width)}"
            data = self.fetch(path)
            if len(data) != 32 * (width or TILE_WIDTH):
                raise VerificationError(
                    f"tile {path} is {len(data)} bytes, want {32 * (width or TILE_WIDTH)}",
                    code="tile_mismatch",
                )
            self.tiles[key] = [data[i : i + 32] for i in range(0, len(data), 32)]
        return self.tiles[key]

    def prefetch(self, keys: Sequence[tuple[int, int]], workers: int) -> None:
        """Fetch the tiles ``(level, index)`` not held yet, ``workers`` requests at a time."""
        wanted = [key for key in dict.fromkeys(keys) if key not in self.tiles]
        self._run(workers, lambda key: self.tile(*key), wanted)

    def check(
        self,
        progress: Progress | None = None,
        *,
        known: int = 0,
        workers: int = 1,
        leaves: Callable[[int, list[bytes]], None] | None = None,
    ) -> int:
        """Every full tile hashes to its entry in the tile above, except the level-0 tiles wholly
        inside the first ``known`` leaves (a tree verified before, whose root the caller checks
        again from the higher tiles); ``leaves(index, hashes)`` sees each level-0 tile checked (a slice
        at a time, ``workers`` calls at once).
        Tiles are fetched ``workers`` at a time, a slice at a time, and the full level-0 tiles are
        let go once checked (a 10M-leaf log has 39,000 of them). Returns how many were checked."""
        tiles = [
            (level, index, width)
            for level, index, width in tlog_tiles(self.size)
            if level or (index + 1) * TILE_WIDTH > known
        ]
        for start in range(0, len(tiles), _SLICE):
            part = tiles[start : start + _SLICE]
            above = [(level + 1, index // TILE_WIDTH) for level, index, width in part if width == TILE_WIDTH]
            self.prefetch([(level, index) for level, index, _ in part] + above, workers)
            for done, (level, index, width) in enumerate(part, start + 1):
                hashes = self.tile(level, index)
                if width == TILE_WIDTH:
                    above_hash = self.tile(level + 1, index // TILE_WIDTH)[index % TILE_WIDTH]
                    if merkle.root(hashes) != above_hash:
                        raise VerificationError(
                            f"tile {level}/{tlog_tile_path(index)} does not hash to its entry in tile "
                            f"{level + 1}/{tlog_tile_path(index // TILE_WIDTH)}",
                            code="tile_mismatch",
                            level=level,
                            index=index,
                        )
                if progress is not None:
                    progress(done, len(tiles))
            level0 = [(index, self.tiles[(0, index)]) for level, index, _ in part if level == 0]
            if leaves is not None:
                self._run(workers, lambda item: leaves(*item), level0)
            for index, hashes in level0:
                if len(hashes) == TILE_WIDTH:
                    del self.tiles[(0, index)]
        return len(tiles)

    @staticmethod
    def _run(workers: int, work: Callable[[Any], object], items: Sequence[Any]) -> None:
        """``work`` on each of ``items``, ``workers`` at a time (its first error raised)."""
        if workers <= 1 or len(items) <= 1:
            for item in items:
                work(item)
            return
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for _ in pool.map(work, items):
                pass

    def node(self, height: int, index: int) -> bytes:
        """MTH of the perfect subtree of ``2^height`` leaves from leaf ``index << height``."""
        level, within = divmod(height, 8)
        first = index << within  # its nodes at tree level 8·level
        hashes = self.tile(level, first // TILE_WIDTH)[
            first % TILE_WIDTH : first % TILE_WIDTH + (1 << within)
        ]
        return merkle.root(hashes)

    def mth(self, end: int) -> bytes:
        """MTH(D[0:end]) for ``end`` ≤ size: its perfect subtrees, right-folded (RFC 9162 §2.1.1)."""
        if end == 0:
            return merkle.EMPTY_ROOT
        parts, start = [], 0
        for height in range(end.bit_length() - 1, -1, -1):
            if end >> height & 1:
                parts.append(self.node(height, start >> height))
                start += 1 << height
        value = parts.pop()
        while parts:
            value = merkle.node_hash(parts.pop(), value)
        return value


def _state(path: Path | None) -> dict[str, Any]:
    if path is None or not path.exists():
        return {}
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(state, dict):
            raise ValueError("not an object")
        return state
    except (OSError, ValueError) as exc:
        raise VerificationError(f"cannot read the state file {path}: {exc}", code="bad_state") from exc


def monitor(
    url: str,
    token: str,
    rpc_url: str,
    *,
    key: str | None = None,
    state_path: Path | None = None,
    entries: bool = False,
    since_last: bool = False,
    workers: int = 8,
    progress: Progress | None = None,
    timeout: float = 30.0,
) -> MonitorReport:
    """Check the log served at ``url`` against the chain at ``rpc_url`` (see the module doc).

    ``since_last`` (with a state file): the level-0 tiles and entries wholly inside the tree
    checked last time are not read again — that tree's root, recomputed from today's higher tiles,
    must still be the one seen, so the part it summarises is unchanged; a full run (the default)
    reads every tile and entry again, and so also sees a tile or entry of the old part served
    differently from what its parent hash says."""
    state = _state(state_path)
    pinned = state.get("verifier_key")
    if key is not None and pinned is not None and key != pinned:
        raise VerificationError(
            f"--key differs from the key pinned in {state_path}; remove the state file to re-pin",
            code="key_changed",
        )
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout) as http:

        def get(path: str) -> httpx.Response:
            return _ok(_fetch(http, path))

        info = get("/v1/log/checkpoint").json()
        anchored = info.get("anchored")
        if not isinstance(anchored, dict):
            raise VerificationError("the log has no anchored checkpoint yet", code="root_not_anchored")
        verifier = key or pinned or info["verifier_key"]
        checkpoint = verify_note(get(TLOG + "/checkpoint").text, verifier)
        if "origin" in state and state["origin"] != checkpoint.origin:
            raise VerificationError(
                f"the log's origin is {checkpoint.origin!r}, {state['origin']!r} last time",
                code="origin_changed",
            )
        on_chain = anchored_root(
            rpc_url, anchored["contract"], int(anchored["chain_id"]), checkpoint.size, timeout=timeout
        )
        if on_chain != checkpoint.root:
            raise VerificationError(
                f"the chain holds 0x{on_chain.hex()} for size {checkpoint.size}, the signed checkpoint "
                f"0x{checkpoint.root.hex()}",
                code="anchored_root_mismatch",
            )
        tree = TileTree(lambda path: get(TLOG + path).content, checkpoint.size)
        previous = state.get("size")
        if not isinstance(previous, int):
            previous = None
        elif previous > checkpoint.size:
            raise VerificationError(
                f"the log shrank: size {checkpoint.size}, {previous} last time", code="not_append_only"
            )
        known = previous if since_last and previous is not None else 0
        checked: list[int] = []  # appended from the worker threads (list.append is atomic)

        def entries_of(index: int, hashes: list[bytes]) -> None:
            checked.append(_check_bundle(http, index, hashes))

        tiles = tree.check(progress, known=known, workers=workers, leaves=entries_of if entries else None)
        if tree.mth(checkpoint.size) != checkpoint.root:
            raise VerificationError(
                f"the tiles do not give the signed root for size {checkpoint.size}", code="root_mismatch"
            )
        if previous is not None and tree.mth(previous).hex() != state.get("root"):
            raise VerificationError(
                f"the tree of size {previous} seen last time is not a prefix of this one: "
                "anchored history was rewritten",
                code="not_append_only",
            )
    if state_path is not None:
        state_path.write_text(
            json.dumps(
                {
                    "origin": checkpoint.origin,
                    "verifier_key": verifier,
                    "size": checkpoint.size,
                    "root": checkpoint.root.hex(),
                },
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
    return MonitorReport(
        checkpoint.origin,
        checkpoint.size,
        checkpoint.root,
        tiles,
        sum(checked),
        previous,
    )


def _fetch(http: httpx.Client, path: str) -> httpx.Response:
    """GET ``path``; a transport failure is ``log_unreachable``."""
    try:
        return http.get(path)
    except httpx.HTTPError as exc:
        raise VerificationError(
            f"cannot reach the log at {http.base_url}: {exc}", code="log_unreachable"
        ) from exc


def _ok(response: httpx.Response) -> httpx.Response:
    """``response`` if it is a 200; else ``log_unauthorized`` (401: the token is not accepted),
    ``log_forbidden`` (403: not this party's to read) or ``log_unreachable``."""
    if response.status_code != 200:
        code = {401: "log_unauthorized", 403: "log_forbidden"}.get(response.status_code, "log_unreachable")
        raise VerificationError(
            f"GET {response.request.url.raw_path.decode()}: {response.status_code} {response.text[:300]}",
            code=code,
        )
    return response


def _check_bundle(http: httpx.Client, index: int, leaves: list[bytes]) -> int:
    """The entries of level-0 tile ``index`` hash to its ``leaves``; returns how many. A bundle
    refused because an entry is too large for it (422 ``entry_too_large``) is read from the JSON
    route instead, each entry canonicalised again (RFC 8785 gives the same bytes back)."""
    width, start = len(leaves), index * TILE_WIDTH
    path = f"{TLOG}/tile/entries/{tlog_tile_path(index, None if width == TILE_WIDTH else width)}"
    response = _fetch(http, path)
    found: list[bytes] = []
    if response.status_code == 422 and _code(response) == "entry_too_large":
        rows = _ok(_fetch(http, f"/v1/log/entries?start={start}&end={start + width}")).json()
        found = [canonical_json(row["entry"]) for row in rows]
    else:
        data = _ok(response).content
        pos = 0
        while pos < len(data):
            n = int.from_bytes(data[pos : pos + 2], "big")
            found.append(data[pos + 2 : pos + 2 + n])
            pos += 2 + n
    if len(found) != width:
        raise VerificationError(f"{path} holds {len(found)} entries, want {width}", code="entry_mismatch")
    for offset, (entry, leaf) in enumerate(zip(found, leaves, strict=True)):
        if merkle.leaf_hash(entry) != leaf:
            raise VerificationError(
                f"log entry {start + offset} does not hash to its leaf in the anchored tree",
                code="entry_mismatch",
                index=start + offset,
            )
    return width


def _code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error.get("code") if isinstance(error, dict) else None
