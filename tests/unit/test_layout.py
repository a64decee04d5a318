"""The tile-ordered ``log_nodes`` key (ledger/log/layout.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.errors import InvalidInput
from ledger.log import layout, merkle
from ledger.log.layout import node_key, parse_tlog_tile_path, tlog_tile_keys, tlog_tile_path

LEVELS = st.integers(min_value=0, max_value=47)


@given(LEVELS, st.data())
def test_key_is_a_bijection_within_63_bits(level: int, data: st.DataObject) -> None:
    index = data.draw(st.integers(min_value=0, max_value=(1 << (48 - level)) - 1))
    key = layout.node_key(level, index)
    assert 0 <= key < 1 << 63
    assert layout.key_node(key) == (level, index)


@given(st.integers(min_value=0, max_value=(1 << 40) - 1))
def test_leaf_helpers(index: int) -> None:
    key = layout.node_key(0, index)
    assert key & layout.POSITION_MASK < layout.TILE_WIDTH and layout.leaf_index(key) == index
    assert layout.node_key(1, index // 2) & layout.POSITION_MASK >= layout.TILE_WIDTH


def test_a_tile_is_one_contiguous_key_range() -> None:
    """Every node of levels 0–7 above leaves 256·t … 256·t + 255 lies in [t << 9, (t + 1) << 9),
    level-major; the tile's keys are exactly 510 and no other node falls among them."""
    for tile in (0, 1, 77, 39_062):
        keys = [
            layout.node_key(level, (tile << (8 - level)) + i)
            for level in range(8)
            for i in range(1 << (8 - level))
        ]
        assert len(set(keys)) == 510
        assert min(keys) == tile << 9 and max(keys) == (tile << 9) + 509
        assert keys == sorted(keys)


def test_a_proofs_lower_nodes_share_one_tile() -> None:
    """The point of the layout: the lowest nodes of an inclusion proof at 10M leaves lie in the
    leaf's own tile (510 consecutive keys) — or, for those the right border of a tree that is not a
    power of two adds, in the last tile, which every such proof shares (and the cache keeps)."""
    size = 10_000_000
    last = layout.node_key(0, size - 1) >> 9
    for index in (0, 1_234_567, 5_000_000, 9_999_000, size - 1):
        nodes, at, start = merkle.inclusion_path(index, size)  # what LogStore.inclusion_proof reads
        if at >= 0:
            nodes += merkle.perfect_nodes_for_range(start, size)
        tiles = {layout.node_key(*n) >> 9 for n in nodes if n[0] < 8}
        assert tiles <= {index >> 8, last}, (index, tiles)


def test_leaf_key_range_spans_exactly_the_leaves() -> None:
    low, high = layout.leaf_key_range(250, 1030)
    leaves = [layout.leaf_index(k) for k in range(low, high) if k & layout.POSITION_MASK < layout.TILE_WIDTH]
    assert leaves == list(range(250, 1030))


def test_tlog_tile_paths_round_trip() -> None:

    for index in (0, 7, 999, 1000, 1_234_067, 2**47 - 1):
        for width in (None, 1, 255):
            assert parse_tlog_tile_path(tlog_tile_path(index, width)) == (index, width)
    assert tlog_tile_path(1_234_067) == "x001/x234/067"  # the spec's example
    assert tlog_tile_path(1_234_067, 12) == "x001/x234/067.p/12"
    assert tlog_tile_path(5) == "005"


@pytest.mark.parametrize(
    "path",
    ["5", "0005", "x000/005", "x001", "001/002", "x01/234", "067.p", "067.p/0", "067.p/256", "067.p/012",
     "067.p/1/2", "", "abc", "٠٠٥", "x001/x234/067.p/12x", "x001/x001/x001/x001/x001/x001/001"],
)  # fmt: skip
def test_tlog_tile_paths_have_one_spelling(path: str) -> None:

    with pytest.raises(InvalidInput) as info:
        parse_tlog_tile_path(path)
    assert info.value.code == "invalid_tile_path"


def test_tlog_tile_keys_are_our_tiles_lowest_level() -> None:

    for level, index in ((0, 0), (0, 273), (1, 1), (2, 0), (5, 3)):
        low, high = tlog_tile_keys(level, index, 256)
        assert [node_key(8 * level, index * 256 + i) for i in range(256)] == list(range(low, high))
