"""Where a Merkle node lives in ``log_nodes``: its primary key (pure; no I/O).

Every perfect subtree hash is one row keyed by a 63-bit integer. The key orders the nodes by
**tile**, as C2SP tlog-tiles cut a tree: a tile of height 8 at tile level ``L`` holds the nodes of
levels ``8L … 8L+7`` above 256 consecutive nodes of level ``8L``. Its key is

    L << 56  |  tile index << 9  |  position in the tile (0 … 509)

with positions level-major inside the tile: the 256 nodes of the tile's lowest level at 0…255,
then 128 at 256…383, … the 2 of its top level at 508…509.

Why: an inclusion proof takes one node from each level. Keyed ``level << 48 | index`` (before
migration 0013) those nodes lay in as many separate regions of the B-tree as there are levels — at
10M leaves a cold proof read 6–8 scattered pages for its uncached lower levels. Keyed by tile, the
eight lowest nodes of a proof share one tile's contiguous key range (a few adjacent pages), and the
next tile level (one row per 256 leaves) is small enough to stay in memory. Appends touch one
insertion point per tile level instead of one per tree level.
"""

from __future__ import annotations

from ledger.errors import InvalidInput

TILE_HEIGHT = 8
_TILE_LEVEL_SHIFT = 56
_POSITION_BITS = 9
_MAX_INDEX_BITS = 47  # a tile index fits 47 bits: logs of up to 2^47 leaves
TILE_WIDTH = 1 << TILE_HEIGHT  # nodes of a tile's lowest level
POSITION_MASK = (1 << _POSITION_BITS) - 1


def node_key(level: int, index: int) -> int:
    """The ``log_nodes`` key of the node at ``level`` (0 = leaves) and ``index`` within it."""
    tile_level, in_tile = divmod(level, TILE_HEIGHT)
    width = TILE_HEIGHT - in_tile  # bits of ``index`` that are its offset within the tile
    tile = index >> width
    position = (1 << _POSITION_BITS) - (1 << (_POSITION_BITS - in_tile)) + (index & ((1 << width) - 1))
    return (tile_level << _TILE_LEVEL_SHIFT) | (tile << _POSITION_BITS) | position


def key_node(key: int) -> tuple[int, int]:
    """The ``(level, index)`` of a ``log_nodes`` key; the inverse of :func:`node_key`."""
    tile_level = key >> _TILE_LEVEL_SHIFT
    tile = (key >> _POSITION_BITS) & ((1 << _MAX_INDEX_BITS) - 1)
    position = key & ((1 << _POSITION_BITS) - 1)
    in_tile = _POSITION_BITS - ((1 << _POSITION_BITS) - 1 - position).bit_length()
    width = TILE_HEIGHT - in_tile
    offset = position - ((1 << _POSITION_BITS) - (1 << (_POSITION_BITS - in_tile)))
    return tile_level * TILE_HEIGHT + in_tile, (tile << width) | offset


def legacy_key(level: int, index: int) -> int:
    """The key before migration 0013 (``level << 48 | index``), for the migration and its test."""
    return (level << 48) | index


def leaf_key_range(start: int, end: int) -> tuple[int, int]:
    """Keys ``[low, high)`` spanning the leaves ``start … end - 1``; interior nodes of the same
    tiles lie between them too: a leaf's position is below ``TILE_WIDTH``
    (``key & POSITION_MASK < TILE_WIDTH``, the filter ``verify`` applies in SQL)."""
    return node_key(0, start), node_key(0, end - 1) + 1


def leaf_index(key: int) -> int:
    """The leaf index of a level-0 key (see :func:`leaf_key_range`)."""
    return ((key >> _POSITION_BITS) << TILE_HEIGHT) | (key & (TILE_WIDTH - 1))


# -- C2SP tlog-tiles names (docs/log.md, "Tiles for standard tooling") ---------------------------
# A tlog tile of level L is the 256 consecutive hashes of tree level 8L: exactly the lowest level
# of our tiles, positions 0…255 of tile level L. Its hashes are one contiguous key range.


def tlog_tile_keys(level: int, index: int, width: int) -> tuple[int, int]:
    """Keys ``[low, high)`` of the ``width`` hashes of tlog tile ``level``/``index``: the nodes of
    tree level ``8·level`` at ``index·256 … index·256 + width − 1``."""
    low = node_key(TILE_HEIGHT * level, index << TILE_HEIGHT)
    return low, low + width


def tlog_tile_path(index: int, width: int | None = None) -> str:
    """The tlog-tiles path of tile ``index`` (``x001/x234/067``), with ``.p/<width>`` if partial."""
    digits = f"{index:03d}"
    digits = "0" * (-len(digits) % 3) + digits
    groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    path = "/".join([*(f"x{g}" for g in groups[:-1]), groups[-1]])
    return path if width is None else f"{path}.p/{width}"


def parse_tlog_tile_path(path: str) -> tuple[int, int | None]:
    """``(index, width)`` of a tlog-tiles path (``width`` None for a full tile). Only the one
    spelling :func:`tlog_tile_path` gives is accepted — three-digit groups, ``x`` before all but
    the last, no superfluous leading group, a width 1…255 without leading zeros — so each tile
    has one name; anything else raises :class:`InvalidInput` ``invalid_tile_path``."""
    parts = path.split("/")
    width: int | None = None
    if len(parts) >= 2 and parts[-2].endswith(".p"):
        text = parts.pop()
        parts[-1] = parts[-1][:-2]
        width = int(text) if text.isdigit() and text.isascii() and len(text) <= 3 else 0
        if not 1 <= width < TILE_WIDTH or str(width) != text:
            raise InvalidInput(
                f"a partial tile's width is 1…255 without leading zeros, not {text!r}",
                code="invalid_tile_path",
            )
    groups = [p[1:] for p in parts[:-1] if p.startswith("x")] + parts[-1:]
    if (
        len(groups) != len(parts)
        or len(groups) > 6
        or not all(len(g) == 3 and g.isdigit() and g.isascii() for g in groups)
    ):
        raise InvalidInput(f"not a tile index path (x001/x234/067): {path!r}", code="invalid_tile_path")
    index = int("".join(groups))
    if tlog_tile_path(index, width) != path:
        raise InvalidInput(f"not the canonical path of tile {index}: {path!r}", code="invalid_tile_path")
    return index, width
