"""Hypothesis properties of :mod:`ledger.log.merkle` against the naive RFC 9162 §2.1 reference
(:mod:`ledger.log._reference`), plus the explicit precondition cases of the verifiers.

The fast code (planned proofs over stored perfect nodes, the compact range, the iterative
verifiers) must agree with the textbook recursion everywhere, and every rejection must be the
exact error type, with its stable code.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ledger.errors import InvalidInput, NotFound, VerificationError
from ledger.log import _reference as ref
from ledger.log.merkle import (
    EMPTY_ROOT,
    CompactRange,
    HashLengthError,
    IndexOutOfRangeError,
    InvalidSizesError,
    MissingNodeError,
    NodeId,
    ProofLengthError,
    RootMismatchError,
    assemble,
    consistency_proof_plan,
    fold,
    inclusion_path,
    inclusion_proof_plan,
    leaf_hash,
    node_hash,
    perfect_nodes_for_range,
    perfect_subtree,
    plan_nodes,
    root,
    root_plan,
    verify_consistency,
    verify_inclusion,
)

N = 300
LEAVES = [leaf_hash(b"entry-%d" % i) for i in range(N)]
NODES: dict[NodeId, bytes] = dict(CompactRange.empty().append(LEAVES)[0])
ROOTS = [ref.mth(LEAVES[:n]) for n in range(N + 1)]

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

sizes = st.integers(min_value=1, max_value=N)


@st.composite
def index_and_size(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(sizes)
    return draw(st.integers(min_value=0, max_value=size - 1)), size


@st.composite
def two_sizes(draw: st.DrawFn) -> tuple[int, int]:
    size2 = draw(sizes)
    return draw(st.integers(min_value=1, max_value=size2)), size2


def flip_bit(h: bytes, bit: int) -> bytes:
    b = bytearray(h)
    b[bit // 8] ^= 1 << (bit % 8)
    return bytes(b)


def perfect_node_hash(level: int, index: int) -> bytes:
    return ref.mth(LEAVES[index << level : (index + 1) << level])


# ------------------------------------------------------------------------------------------
# hashing and roots


def test_hashing_constants() -> None:
    assert hashlib.sha256(b"").digest() == EMPTY_ROOT
    assert leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    assert node_hash(b"a" * 32, b"b" * 32) == hashlib.sha256(b"\x01" + b"a" * 32 + b"b" * 32).digest()
    assert root([]) == EMPTY_ROOT == CompactRange.empty().root() == fold([], {})


@FAST
@given(size=st.integers(min_value=0, max_value=N))
def test_roots_agree(size: int) -> None:
    expected = ROOTS[size]
    assert root(LEAVES[:size]) == expected
    assert fold(root_plan(size), NODES) == expected
    assert CompactRange.from_nodes(size, NODES).root() == expected


# ------------------------------------------------------------------------------------------
# planning


@FAST
@given(case=index_and_size())
def test_inclusion_plan_equals_reference(case: tuple[int, int]) -> None:
    index, size = case
    assert assemble(inclusion_proof_plan(index, size), NODES) == ref.inclusion_proof(index, size, LEAVES)


@FAST
@given(case=two_sizes())
def test_consistency_plan_equals_reference(case: tuple[int, int]) -> None:
    size1, size2 = case
    assert assemble(consistency_proof_plan(size1, size2), NODES) == ref.consistency_proof(
        size1, size2, LEAVES
    )


def _path_proof(index: int, size: int) -> list[bytes]:
    nodes, at, start = inclusion_path(index, size)
    proof = [NODES[n] for n in nodes]
    if at >= 0:
        proof.insert(at, fold(perfect_nodes_for_range(start, size), NODES))
    return proof


@FAST
@given(case=index_and_size())
def test_inclusion_path_equals_reference(case: tuple[int, int]) -> None:
    """The fast path the store serves proofs with gives the RFC's proof."""
    index, size = case
    assert _path_proof(index, size) == ref.inclusion_proof(index, size, LEAVES)


@given(size=st.integers(min_value=1, max_value=2**48), data=st.data())
def test_inclusion_path_equals_the_plan_at_any_size(size: int, data: st.DataObject) -> None:
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    nodes, at, start = inclusion_path(index, size)
    groups: list[list[NodeId]] = [[n] for n in nodes]
    if at >= 0:
        groups.insert(at, perfect_nodes_for_range(start, size))
    assert groups == inclusion_proof_plan(index, size)


@given(size=st.integers(min_value=1, max_value=2**48), data=st.data())
def test_a_perfect_subtree_shares_the_proof_above_it(size: int, data: st.DataObject) -> None:
    """The store's warm proof: the siblings inside the leaf's perfect subtree, then the part above
    it, which is the same for every leaf of that subtree."""
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    start, height = perfect_subtree(index, size)
    assert start % (1 << height) == 0 and start <= index < start + (1 << height) <= size
    assert size & (1 << height)  # one of size's binary digits
    nodes, at, range_start = inclusion_path(index, size)
    assert nodes[:height] == [(level, (index >> level) ^ 1) for level in range(height)]
    above, above_at, above_start = inclusion_path(start, size)
    assert (nodes[height:], at, range_start) == (above[height:], above_at, above_start)
    assert at == -1 or at >= height


def test_plans_exhaustively_for_small_trees() -> None:
    for size in range(1, 40):
        for index in range(size):
            plan = inclusion_proof_plan(index, size)
            assert assemble(plan, NODES) == ref.inclusion_proof(index, size, LEAVES)
            assert _path_proof(index, size) == ref.inclusion_proof(index, size, LEAVES)
        for size1 in range(1, size + 1):
            plan = consistency_proof_plan(size1, size)
            assert assemble(plan, NODES) == ref.consistency_proof(size1, size, LEAVES)


def _leaf_range(node: NodeId) -> range:
    level, index = node
    return range(index << level, (index + 1) << level)


@given(start=st.integers(min_value=0, max_value=2**50), length=st.integers(min_value=0, max_value=2**50))
def test_perfect_nodes_for_range_is_a_maximal_aligned_cover(start: int, length: int) -> None:
    nodes = perfect_nodes_for_range(start, start + length)
    position = start
    for level, index in nodes:
        assert level >= 0 and _leaf_range((level, index)).start == position
        position += 1 << level
    assert position == start + length
    for (l1, i1), (l2, i2) in itertools.pairwise(nodes):
        assert not (l1 == l2 and i1 % 2 == 0 and i2 == i1 + 1), "two siblings left unmerged"
    assert len(nodes) <= 2 * max(1, length.bit_length())


@given(size=st.integers(min_value=1, max_value=2**48), data=st.data())
def test_inclusion_plan_partitions_the_tree_at_any_size(size: int, data: st.DataObject) -> None:
    """At 10M+ leaves the plan stays O(log n): the groups tile [0, size) minus the leaf itself."""
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    plan = inclusion_proof_plan(index, size)
    covered = sorted((r.start, r.stop) for group in plan for r in map(_leaf_range, group))
    tiles = [(0, index), (index + 1, size)]
    merged: list[tuple[int, int]] = []
    for a, b in covered:
        if merged and merged[-1][1] == a:
            merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    assert merged == [t for t in tiles if t[0] < t[1]]
    assert len(plan) <= size.bit_length()
    assert len(plan_nodes(plan)) <= 2 * size.bit_length()


@FAST
@given(case=two_sizes())
def test_plan_nodes_lists_every_needed_node_once(case: tuple[int, int]) -> None:
    plan = consistency_proof_plan(*case)
    needed = plan_nodes(plan)
    assert len(needed) == len(set(needed))
    assert assemble(plan, {n: NODES[n] for n in needed}) == assemble(plan, NODES)


def test_assemble_reports_a_missing_node() -> None:
    plan = inclusion_proof_plan(0, 8)
    missing = plan[-1][0]
    nodes = {n: h for n, h in NODES.items() if n != missing}
    with pytest.raises(MissingNodeError) as info:
        assemble(plan, nodes)
    assert info.value.node == missing and info.value.code == "missing_node"
    assert isinstance(info.value, NotFound)


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda: inclusion_proof_plan(0, 0), "index_out_of_range"),
        (lambda: inclusion_proof_plan(5, 5), "index_out_of_range"),
        (lambda: inclusion_proof_plan(-1, 5), "index_out_of_range"),
        (lambda: inclusion_path(5, 5), "index_out_of_range"),
        (lambda: inclusion_path(0, 0), "index_out_of_range"),
        (lambda: perfect_subtree(5, 5), "index_out_of_range"),
        (lambda: perfect_subtree(-1, 5), "index_out_of_range"),
        (lambda: consistency_proof_plan(0, 5), "invalid_sizes"),
        (lambda: consistency_proof_plan(6, 5), "invalid_sizes"),
        (lambda: root_plan(-1), "invalid_sizes"),
        (lambda: perfect_nodes_for_range(5, 4), "invalid_range"),
        (lambda: perfect_nodes_for_range(-1, 4), "invalid_range"),
        (lambda: CompactRange(size=3, hashes=[EMPTY_ROOT]), "invalid_frontier"),
        (lambda: CompactRange(size=1, hashes=[b"short"]), "invalid_frontier"),
        (lambda: CompactRange(size=-1, hashes=[]), "invalid_sizes"),
        (lambda: CompactRange.empty().append([b"short"]), "invalid_hash_length"),
        (lambda: root([b"short"]), "invalid_hash_length"),
    ],
)
def test_bad_planning_input_is_invalid_input(call: Callable[[], object], code: str) -> None:
    """Building proofs from bad numbers is the caller's mistake (400), not a failed check."""
    with pytest.raises(InvalidInput) as info:
        call()
    assert info.value.code == code


def test_consistency_plan_for_equal_sizes_is_empty() -> None:
    assert consistency_proof_plan(7, 7) == []
    assert root_plan(0) == []


# ------------------------------------------------------------------------------------------
# compact range


@FAST
@given(batches=st.lists(st.integers(min_value=0, max_value=40), max_size=12))
def test_compact_range_appends_in_batches(batches: list[int]) -> None:
    frontier = CompactRange.empty()
    emitted: list[tuple[NodeId, bytes]] = []
    for count in batches:
        start = frontier.size
        count = min(count, N - start)
        new_nodes, frontier = frontier.append(LEAVES[start : start + count])
        emitted.extend(new_nodes)
        assert frontier.size == start + count
        assert frontier.root() == ROOTS[frontier.size]
        assert frontier == CompactRange.from_nodes(frontier.size, NODES)
        assert [n for n, _ in frontier.nodes()] == CompactRange.frontier_ids(frontier.size)
    size = frontier.size
    expected = {
        (level, index): perfect_node_hash(level, index)
        for level in range(size.bit_length())
        for index in range(size >> level)
    }
    assert len(emitted) == len(expected), "every perfect node exactly once"
    assert dict(emitted) == expected


@given(batches=st.lists(st.integers(min_value=0, max_value=70), max_size=6))
def test_extend_is_append_without_the_nodes(batches: list[int]) -> None:
    """The audit's fold (``extend``) reaches the frontier ``append`` does."""
    appended = extended = CompactRange.empty()
    at = 0
    for n in batches:
        chunk = LEAVES[at % N : at % N + n]
        _, appended = appended.append(chunk)
        extended = extended.extend(chunk)
        at += n
        assert extended == appended
    with pytest.raises(InvalidInput) as info:
        extended.extend([b"short"])
    assert info.value.code == "invalid_hash_length"


def test_compact_range_value_semantics() -> None:
    a = CompactRange.empty().append(LEAVES[:5])[1]
    b = CompactRange.empty().append(LEAVES[:3])[1].append(LEAVES[3:5])[1]
    assert a == b and hash(a) == hash(b) and a != CompactRange.empty()
    assert a.hashes == (NODES[(2, 0)], NODES[(0, 4)])
    assert repr(a) == f"CompactRange(size=5, root=0x{ROOTS[5].hex()})"
    assert a.__eq__(object()) is NotImplemented


# ------------------------------------------------------------------------------------------
# inclusion verification


@FAST
@given(case=index_and_size())
def test_inclusion_accepts_generated_proofs(case: tuple[int, int]) -> None:
    index, size = case
    proof = assemble(inclusion_proof_plan(index, size), NODES)
    verify_inclusion(LEAVES[index], index, size, proof, ROOTS[size])


@FAST
@given(case=index_and_size(), data=st.data())
def test_inclusion_rejects_a_flipped_bit(case: tuple[int, int], data: st.DataObject) -> None:
    index, size = case
    proof = ref.inclusion_proof(index, size, LEAVES)
    leaf, root_ = LEAVES[index], ROOTS[size]
    target = data.draw(st.integers(min_value=0, max_value=len(proof) + 1), label="which hash")
    bit = data.draw(st.integers(min_value=0, max_value=255), label="bit")
    if target < len(proof):
        proof[target] = flip_bit(proof[target], bit)
    elif target == len(proof):
        leaf = flip_bit(leaf, bit)
    else:
        root_ = flip_bit(root_, bit)
    with pytest.raises(RootMismatchError) as info:
        verify_inclusion(leaf, index, size, proof, root_)
    assert info.value.code == "root_mismatch" and info.value.expected == root_
    assert info.value.calculated != root_


def _expected_inclusion_error(
    index: int, size: int, leaf: bytes, proof: list[bytes], root_: bytes
) -> type[VerificationError] | None:
    """What the definition says about (index, size, proof, root): out of range, wrong shape,
    wrong root, or valid — computed through the reference's PATH recursion."""
    if not 0 <= index < size:
        return IndexOutOfRangeError
    try:
        implied = ref.root_from_inclusion_proof(index, size, leaf, proof)
    except ValueError:
        return ProofLengthError
    return None if implied == root_ else RootMismatchError


@FAST
@given(case=index_and_size(), other=st.integers(min_value=-2, max_value=N + 2))
def test_inclusion_with_a_wrong_index(case: tuple[int, int], other: int) -> None:
    index, size = case
    assume(other != index)
    proof = ref.inclusion_proof(index, size, LEAVES)
    expected = _expected_inclusion_error(other, size, LEAVES[index], proof, ROOTS[size])
    assert expected is not None, "distinct leaves: a proof never fits another index"
    with pytest.raises(expected):
        verify_inclusion(LEAVES[index], other, size, proof, ROOTS[size])


@FAST
@given(case=index_and_size(), other=st.integers(min_value=-1, max_value=2 * N))
def test_inclusion_with_a_wrong_size(case: tuple[int, int], other: int) -> None:
    """A size change is caught unless it leaves the PATH recursion unchanged — e.g. leaf 0 with
    sizes 5 and 6 take the same left/right steps. The root, anchored with its size, is what binds
    the size; here verify must agree with the definition either way."""
    index, size = case
    assume(other != size)
    proof = ref.inclusion_proof(index, size, LEAVES)
    expected = _expected_inclusion_error(index, other, LEAVES[index], proof, ROOTS[size])
    if expected is None:
        verify_inclusion(LEAVES[index], index, other, proof, ROOTS[size])
    else:
        with pytest.raises(expected):
            verify_inclusion(LEAVES[index], index, other, proof, ROOTS[size])


@FAST
@given(
    case=index_and_size(),
    proof=st.lists(st.binary(min_size=32, max_size=32), max_size=10),
)
def test_inclusion_agrees_with_the_definition_on_arbitrary_proofs(
    case: tuple[int, int], proof: list[bytes]
) -> None:
    index, size = case
    expected = _expected_inclusion_error(index, size, LEAVES[index], proof, ROOTS[size])
    if expected is None:  # only the empty proof of a one-leaf tree
        verify_inclusion(LEAVES[index], index, size, proof, ROOTS[size])
    else:
        with pytest.raises(expected):
            verify_inclusion(LEAVES[index], index, size, proof, ROOTS[size])


@pytest.mark.parametrize(
    ("index", "size", "proof_len", "error"),
    [
        (0, 0, 0, IndexOutOfRangeError),  # the empty tree has no leaves
        (-1, 4, 2, IndexOutOfRangeError),
        (4, 4, 2, IndexOutOfRangeError),
        (0, 1, 1, ProofLengthError),  # a one-leaf tree needs the empty proof
        (0, 4, 0, ProofLengthError),  # empty proof
        (0, 4, 3, ProofLengthError),
    ],
)
def test_inclusion_preconditions(
    index: int, size: int, proof_len: int, error: type[VerificationError]
) -> None:
    with pytest.raises(error) as info:
        verify_inclusion(LEAVES[0], index, size, [LEAVES[1]] * proof_len, ROOTS[max(size, 1)])
    assert info.value.code == error.code
    if isinstance(info.value, IndexOutOfRangeError):
        assert (info.value.index, info.value.size) == (index, size)
    if isinstance(info.value, ProofLengthError):
        assert info.value.actual == proof_len


def test_inclusion_hash_lengths_are_checked_first() -> None:
    for args in (
        (b"x" * 31, 0, 1, [], ROOTS[1]),
        (LEAVES[0], 0, 1, [], b""),
        (LEAVES[0], 0, 2, [b"x" * 33], ROOTS[2]),
        (LEAVES[0], 5, 2, [b""], ROOTS[2]),  # before the index check
    ):
        with pytest.raises(HashLengthError) as info:
            verify_inclusion(*args)
        assert info.value.code == "invalid_hash_length"


def test_single_leaf_tree_root_is_the_leaf_hash() -> None:
    verify_inclusion(LEAVES[0], 0, 1, [], LEAVES[0])


# ------------------------------------------------------------------------------------------
# consistency verification


@FAST
@given(case=two_sizes())
def test_consistency_accepts_generated_proofs(case: tuple[int, int]) -> None:
    size1, size2 = case
    proof = assemble(consistency_proof_plan(size1, size2), NODES)
    verify_consistency(size1, size2, ROOTS[size1], ROOTS[size2], proof)


@FAST
@given(case=two_sizes(), data=st.data())
def test_consistency_rejects_a_flipped_bit(case: tuple[int, int], data: st.DataObject) -> None:
    size1, size2 = case
    proof = ref.consistency_proof(size1, size2, LEAVES)
    root1, root2 = ROOTS[size1], ROOTS[size2]
    target = data.draw(st.integers(min_value=0, max_value=len(proof) + 1), label="which hash")
    bit = data.draw(st.integers(min_value=0, max_value=255), label="bit")
    if target < len(proof):
        proof[target] = flip_bit(proof[target], bit)
    elif target == len(proof):
        root1 = flip_bit(root1, bit)
    else:
        root2 = flip_bit(root2, bit)
    with pytest.raises(RootMismatchError) as info:
        verify_consistency(size1, size2, root1, root2, proof)
    err = info.value
    assert err.code == "root_mismatch" and err.which in {"root1", "root2"}
    assert err.expected == (root1 if err.which == "root1" else root2) != err.calculated


def _expected_consistency_error(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: list[bytes]
) -> type[VerificationError] | None:
    if size1 < 0 or size2 < size1 or (size1 == 0 < size2):
        return InvalidSizesError
    if size1 == size2:
        return ProofLengthError if proof else (None if root1 == root2 else RootMismatchError)
    try:
        implied = ref.roots_from_consistency_proof(size1, size2, root1, proof)
    except ValueError:
        return ProofLengthError
    return None if implied == (root1, root2) else RootMismatchError


@FAST
@given(
    case=two_sizes(),
    other1=st.integers(min_value=-1, max_value=N),
    other2=st.integers(min_value=0, max_value=N),
)
def test_consistency_with_wrong_sizes(case: tuple[int, int], other1: int, other2: int) -> None:
    size1, size2 = case
    assume((other1, other2) != (size1, size2))
    proof = ref.consistency_proof(size1, size2, LEAVES)
    root1, root2 = ROOTS[size1], ROOTS[size2]
    expected = _expected_consistency_error(other1, other2, root1, root2, proof)
    if expected is None:
        verify_consistency(other1, other2, root1, root2, proof)
    else:
        with pytest.raises(expected):
            verify_consistency(other1, other2, root1, root2, proof)


@FAST
@given(case=two_sizes(), proof=st.lists(st.binary(min_size=32, max_size=32), max_size=10))
def test_consistency_agrees_with_the_definition_on_arbitrary_proofs(
    case: tuple[int, int], proof: list[bytes]
) -> None:
    size1, size2 = case
    expected = _expected_consistency_error(size1, size2, ROOTS[size1], ROOTS[size2], proof)
    if expected is None:  # only the empty proof between equal sizes
        verify_consistency(size1, size2, ROOTS[size1], ROOTS[size2], proof)
    else:
        with pytest.raises(expected):
            verify_consistency(size1, size2, ROOTS[size1], ROOTS[size2], proof)


@pytest.mark.parametrize(
    ("size1", "size2", "proof_len", "roots_equal", "error"),
    [
        (0, 0, 0, True, None),  # empty to empty: nothing to prove
        (5, 5, 0, True, None),  # equal sizes, equal roots, empty proof
        (5, 5, 0, False, RootMismatchError),  # equal sizes, different roots
        (5, 5, 1, True, ProofLengthError),  # equal sizes need the empty proof
        (0, 5, 0, False, InvalidSizesError),  # a proof from the empty tree is meaningless
        (0, 5, 1, False, InvalidSizesError),
        (6, 5, 0, False, InvalidSizesError),  # size1 > size2
        (-1, 5, 0, False, InvalidSizesError),
        (3, 5, 0, False, ProofLengthError),  # empty proof
        (4, 5, 0, False, ProofLengthError),  # empty proof, size1 a power of two
    ],
)
def test_consistency_preconditions(
    size1: int, size2: int, proof_len: int, roots_equal: bool, error: type[VerificationError] | None
) -> None:
    root1 = ROOTS[max(size1, 0)]
    root2 = root1 if roots_equal else ROOTS[size2] if size2 != size1 else flip_bit(root1, 0)
    proof = [LEAVES[0]] * proof_len
    if error is None:
        verify_consistency(size1, size2, root1, root2, proof)
        return
    with pytest.raises(error) as info:
        verify_consistency(size1, size2, root1, root2, proof)
    assert info.value.code == error.code
    if isinstance(info.value, InvalidSizesError):
        assert (info.value.size1, info.value.size2) == (size1, size2)


def test_consistency_hash_lengths_are_checked_first() -> None:
    for args in (
        (1, 2, b"x", ROOTS[2], [LEAVES[1]]),
        (1, 2, ROOTS[1], b"x" * 64, [LEAVES[1]]),
        (1, 2, ROOTS[1], ROOTS[2], [b""]),
        (3, 2, ROOTS[1], ROOTS[2], [b""]),  # before the size check
    ):
        with pytest.raises(HashLengthError) as info:
            verify_consistency(*args)
        assert info.value.code == "invalid_hash_length"


def test_error_codes_are_stable() -> None:
    assert {
        e.code
        for e in (
            HashLengthError,
            IndexOutOfRangeError,
            InvalidSizesError,
            ProofLengthError,
            RootMismatchError,
        )
    } == {"invalid_hash_length", "index_out_of_range", "invalid_sizes", "wrong_proof_length", "root_mismatch"}
    assert all(
        issubclass(e, VerificationError)
        for e in (
            HashLengthError,
            IndexOutOfRangeError,
            InvalidSizesError,
            ProofLengthError,
            RootMismatchError,
        )
    )
