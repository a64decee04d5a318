"""Merkle tree maths of the log: RFC 9162 §2.1 (identical to RFC 6962 §2.1). Pure, no I/O.

Four concerns, each a section below (transparency-dev/merkle keeps them as separate packages):

* **hashing** — leaf ``SHA-256(0x00 ‖ entry)``, node ``SHA-256(0x01 ‖ l ‖ r)`` (§2.1.1); the
  domain-separation bytes make a leaf hash never collide with a node hash.
* **verification** — §2.1.3.2 (inclusion) and §2.1.4.2 (consistency). Verifiers return ``None``
  or raise a :class:`~ledger.errors.VerificationError` subclass carrying the data a caller needs
  to report *why* (house style: never a ``bool`` that can be forgotten).
* **proof planning** — storage keeps the hash of every *perfect* subtree: node ``(level, index)``
  covers leaves ``[index·2^level, (index+1)·2^level)``. Every hash a proof needs is ``MTH(D[a:b])``
  of an RFC subtree, which is the right-fold of at most ~log₂ n stored perfect nodes, so a proof
  over 10M+ leaves costs O(log² n) node reads at worst instead of O(n) hashing.
* **compact range** — the right border ("frontier") of the tree, enough to append leaves and
  compute the root without reading anything else; appending reports every perfect node it
  completes so storage can persist them.

The naive recursive definitions live in :mod:`ledger.log._reference`; tests check this module
against them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import TypeAlias

from ledger.errors import InvalidInput, NotFound, VerificationError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactRange",
    "HashLengthError",
    "IndexOutOfRangeError",
    "InvalidSizesError",
    "MissingNodeError",
    "NodeId",
    "Plan",
    "ProofLengthError",
    "RootMismatchError",
    "assemble",
    "consistency_proof_plan",
    "fold",
    "inclusion_proof_plan",
    "leaf_hash",
    "node_hash",
    "perfect_nodes_for_range",
    "perfect_subtree",
    "plan_nodes",
    "root",
    "root_plan",
    "verify_consistency",
    "verify_inclusion",
]

_sha256 = hashlib.sha256

HASH_SIZE = 32
"""Bytes in a SHA-256 digest; every leaf, node, root and proof element has exactly this length."""

EMPTY_ROOT: bytes = _sha256(b"").digest()
"""RFC 9162 §2.1.1: ``MTH({}) = SHA-256()``, the root of the empty tree."""

NodeId: TypeAlias = tuple[int, int]
"""``(level, index)`` of a perfect subtree: it covers leaves ``[index << level, (index + 1) << level)``."""

Plan: TypeAlias = list[list[NodeId]]
"""One group of perfect nodes per proof element; each group right-folds into that element."""


# --------------------------------------------------------------------------------------------
# Hashing (RFC 9162 §2.1.1)


def leaf_hash(entry: bytes) -> bytes:
    """RFC 9162 §2.1.1: ``MTH({d(0)}) = SHA-256(0x00 ‖ d(0))``."""
    return _sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 §2.1.1: ``SHA-256(0x01 ‖ MTH(D[0:k]) ‖ MTH(D[k:n]))``."""
    return _sha256(b"\x01" + left + right).digest()


def root(leaf_hashes: Iterable[bytes]) -> bytes:
    """RFC 9162 §2.1.1 ``MTH(D[n])`` over already-hashed leaves, in O(n) time and O(log n) memory.

    Same result as the recursive definition: the stack holds one perfect subtree per set bit of
    the count so far, and the final right-fold of the stack is the RFC's ragged right edge.
    """
    return CompactRange.empty().extend(leaf_hashes).root()


def _fold_hashes(hashes: Sequence[bytes]) -> bytes:
    """Right-fold ``[h0, h1, …, hk]`` into ``node(h0, node(h1, … hk))``; empty → :data:`EMPTY_ROOT`.

    Why a right fold: in RFC 9162 the split point is the largest power of two, so the left child
    is always perfect and the raggedness is pushed down the right spine.
    """
    if not hashes:
        return EMPTY_ROOT
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = _sha256(b"\x01" + h + acc).digest()
    return acc


# --------------------------------------------------------------------------------------------
# Verification errors — each carries its data and a stable ``code``.


class HashLengthError(VerificationError):
    """A leaf hash, root or proof element is not a 32-byte SHA-256 digest."""

    code = "invalid_hash_length"

    def __init__(self, what: str, length: int) -> None:
        super().__init__(f"{what} is {length} bytes, want {HASH_SIZE}", what=what, length=length)
        self.what = what
        self.length = length


class IndexOutOfRangeError(VerificationError):
    """The leaf index is not inside the tree (``index >= size``, which includes every index of
    the empty tree, or a negative index)."""

    code = "index_out_of_range"

    def __init__(self, index: int, size: int) -> None:
        super().__init__(f"leaf index {index} is not in a tree of size {size}", index=index, size=size)
        self.index = index
        self.size = size


class InvalidSizesError(VerificationError):
    """The two tree sizes cannot have a consistency proof: ``size1 > size2``, a negative size, or
    ``size1 == 0 < size2`` (RFC 9162 §2.1.4: a proof from the empty tree is meaningless)."""

    code = "invalid_sizes"

    def __init__(self, size1: int, size2: int, reason: str) -> None:
        super().__init__(f"sizes {size1} -> {size2}: {reason}", size1=size1, size2=size2)
        self.size1 = size1
        self.size2 = size2


class ProofLengthError(VerificationError):
    """The proof has the wrong number of elements for the (index, size) or (size1, size2)
    claimed — the lengths are fully determined by those numbers (RFC 9162 §2.1.3/§2.1.4)."""

    code = "wrong_proof_length"

    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(f"proof has {actual} hashes, want {expected}", expected=expected, actual=actual)
        self.expected = expected
        self.actual = actual


class RootMismatchError(VerificationError):
    """The root recomputed from the proof differs from the one given. ``which`` names the root
    (``"root"`` for inclusion, ``"root1"``/``"root2"`` for consistency)."""

    code = "root_mismatch"

    def __init__(self, expected: bytes, calculated: bytes, *, which: str = "root") -> None:
        super().__init__(
            f"{which} mismatch: expected 0x{expected.hex()}, calculated 0x{calculated.hex()}",
            expected="0x" + expected.hex(),
            calculated="0x" + calculated.hex(),
            which=which,
        )
        self.expected = expected
        self.calculated = calculated
        self.which = which


class MissingNodeError(NotFound):
    """:func:`assemble` was not given a node that the plan needs (a storage inconsistency)."""

    code = "missing_node"

    def __init__(self, node: NodeId) -> None:
        super().__init__(f"perfect node (level={node[0]}, index={node[1]}) not provided", node=node)
        self.node = node


def _check_hash(what: str, h: bytes) -> None:
    if len(h) != HASH_SIZE:
        raise HashLengthError(what, len(h))


# --------------------------------------------------------------------------------------------
# Verification (RFC 9162 §2.1.3.2, §2.1.4.2)


def _inclusion_shape(index: int, size: int) -> tuple[int, int]:
    """Split an inclusion proof of leaf ``index`` in a tree of ``size`` into (inner, border):
    ``inner`` siblings below the point where the path to ``index`` leaves the path to the last
    leaf ``size-1``, then one ``border`` hash per set bit of ``index`` above it
    (transparency-dev/merkle ``decompInclProof``). Requires ``0 <= index < size``."""
    inner = (index ^ (size - 1)).bit_length()
    border = (index >> inner).bit_count()
    return inner, border


def verify_inclusion(
    leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree of ``tree_size`` whose root is ``root``.

    RFC 9162 §2.1.3.2. Preconditions are explicit cases, checked in this order so the error names
    the first thing wrong: malformed hashes, index outside ``[0, tree_size)`` (so any index of
    the empty tree), proof length other than the one the RFC's PATH yields, then the root.
    """
    _check_hash("leaf hash", leaf_hash)
    _check_hash("root", root)
    for i, p in enumerate(proof):
        _check_hash(f"proof[{i}]", p)
    if index < 0 or index >= tree_size:
        raise IndexOutOfRangeError(index, tree_size)
    inner, border = _inclusion_shape(index, tree_size)
    if len(proof) != inner + border:
        raise ProofLengthError(inner + border, len(proof))
    # RFC 9162 §2.1.3.2 steps 2-5, literally.
    fn, sn, r = index, tree_size - 1, leaf_hash
    for p in proof:
        if sn == 0:  # unreachable after the length check; kept as the RFC's own guard
            raise ProofLengthError(inner + border, len(proof))
        if fn & 1 or fn == sn:
            r = _sha256(b"\x01" + p + r).digest()
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _sha256(b"\x01" + r + p).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:  # unreachable after the length check
        raise ProofLengthError(inner + border, len(proof))
    if r != root:
        raise RootMismatchError(root, r)


def _consistency_length(size1: int, size2: int) -> int:
    """Number of hashes in ``PROOF(size1, D[size2])`` for ``0 < size1 < size2`` (RFC 9162 §2.1.4.1):
    the inclusion-proof shape of leaf ``size1-1`` minus the levels inside the perfect subtree
    that ends at ``size1``, plus that subtree's own hash unless it is the whole old tree."""
    inner, border = _inclusion_shape(size1 - 1, size2)
    shift = (size1 & -size1).bit_length() - 1  # trailing zero bits of size1
    seed = 0 if size1 == 1 << shift else 1
    return seed + inner - shift + border


def verify_consistency(size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]) -> None:
    """Check that the tree of ``size2`` with ``root2`` extends the tree of ``size1`` with ``root1``.

    RFC 9162 §2.1.4.2. Explicit cases, in order: malformed hashes; ``size1 > size2`` or a negative
    size; equal sizes (proof must be empty and the roots equal — this includes 0 → 0);
    ``size1 == 0 < size2`` (a proof from the empty tree is meaningless, §2.1.4); empty proof;
    wrong length; then ``root1`` and ``root2`` in that order.
    """
    _check_hash("root1", root1)
    _check_hash("root2", root2)
    for i, p in enumerate(proof):
        _check_hash(f"proof[{i}]", p)
    if size1 < 0 or size2 < 0:
        raise InvalidSizesError(size1, size2, "negative tree size")
    if size1 > size2:
        raise InvalidSizesError(size1, size2, "the second tree is smaller than the first")
    if size1 == size2:
        if proof:
            raise ProofLengthError(0, len(proof))
        if root1 != root2:  # the same tree twice: root2 must be root1
            raise RootMismatchError(root2, root1, which="root2")
        return
    if size1 == 0:
        raise InvalidSizesError(size1, size2, "a consistency proof from the empty tree is meaningless")
    expected = _consistency_length(size1, size2)
    if not proof:
        raise ProofLengthError(expected, 0)
    if len(proof) != expected:
        raise ProofLengthError(expected, len(proof))
    # RFC 9162 §2.1.4.2 steps 2-7, literally.
    path = [root1, *proof] if size1 & (size1 - 1) == 0 else list(proof)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:  # unreachable after the length check
            raise ProofLengthError(expected, len(proof))
        if fn & 1 or fn == sn:
            fr = _sha256(b"\x01" + c + fr).digest()
            sr = _sha256(b"\x01" + c + sr).digest()
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = _sha256(b"\x01" + sr + c).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:  # unreachable after the length check
        raise ProofLengthError(expected, len(proof))
    if fr != root1:
        raise RootMismatchError(root1, fr, which="root1")
    if sr != root2:
        raise RootMismatchError(root2, sr, which="root2")


# --------------------------------------------------------------------------------------------
# Proof planning over stored perfect subtrees


def perfect_nodes_for_range(start: int, end: int) -> list[NodeId]:
    """Decompose leaves ``[start, end)`` into maximal aligned perfect subtrees, left to right.

    For a range that is an RFC 9162 subtree — ``start`` aligned to a power of two at least
    ``end - start``, which is the case of every ``MTH(D[a:b])`` that appears in a proof or root —
    the sizes are the set bits of ``end - start`` from high to low, and right-folding their hashes
    with :func:`node_hash` gives exactly ``MTH(D[start:end])`` (§2.1.1 splits at the largest power
    of two, so only the right spine is ragged). For other ranges it is the compact range.
    """
    if start < 0 or end < start:
        raise InvalidInput(f"invalid leaf range [{start}, {end})", code="invalid_range")
    out: list[NodeId] = []
    while start < end:
        # Largest level allowed by the alignment of start (any level if start == 0) and by the length.
        level = (end - start).bit_length() - 1
        if start:
            level = min(level, (start & -start).bit_length() - 1)
        out.append((level, start >> level))
        start += 1 << level
    return out


def _check_index(index: int, size: int) -> None:
    if index < 0 or index >= size:
        raise InvalidInput(
            f"leaf index {index} is not in a tree of size {size}",
            code="index_out_of_range",
            index=index,
            size=size,
        )


def inclusion_proof_plan(index: int, size: int) -> Plan:
    """RFC 9162 §2.1.3.1 ``PATH(index, D[size])`` as perfect-node groups, leaf end first.

    Walks the RFC recursion top-down over leaf ranges; the sibling range at each step is an RFC
    subtree, so :func:`perfect_nodes_for_range` gives the nodes whose right-fold is its ``MTH``.
    Raises :class:`~ledger.errors.InvalidInput` (code ``index_out_of_range``) — a bad request,
    not a failed verification. The store serves proofs by the faster :func:`inclusion_path`; this
    form, a direct transcription of the RFC recursion, is its oracle at sizes the byte-level
    reference cannot reach (tests/unit/test_merkle_properties.py).
    """
    _check_index(index, size)
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        mid = lo + (1 << ((hi - lo - 1).bit_length() - 1))
        if index < mid:
            ranges.append((mid, hi))
            hi = mid
        else:
            ranges.append((lo, mid))
            lo = mid
    ranges.reverse()
    return [perfect_nodes_for_range(a, b) for a, b in ranges]


def inclusion_path(index: int, size: int) -> tuple[list[NodeId], int, int]:
    """``PATH(index, D[size])`` bottom-up, fast: the perfect sibling nodes, and where the one
    element that is not a perfect node sits — ``(nodes, at, start)`` means the proof is ``nodes``
    with ``MTH(D[start:size])`` inserted at position ``at`` (``at == -1``: every element is a
    perfect node). The same proof as :func:`inclusion_proof_plan`, without building a plan.

    Why it holds: RFC 9162's tree is the complete binary tree over ``size`` leaves in which a node
    without a right child is its left child promoted. Walking up from the leaf, the sibling at
    ``level`` is perfect when it ends inside the tree, absent when it starts past the end, and
    otherwise the right border's subtree ``[start, size)`` — once at most, since above it the path
    contains the last leaf and every further sibling is a left one or absent.
    """
    _check_index(index, size)
    nodes: list[NodeId] = []
    at = start = -1
    level = 0
    k = index
    while k or (1 << level) < size:
        s = k ^ 1
        lo = s << level
        if lo < size:
            if (lo + (1 << level)) <= size:
                nodes.append((level, s))
            else:
                at, start = len(nodes), lo
        k >>= 1
        level += 1
    return nodes, at, start


def perfect_subtree(index: int, size: int) -> tuple[int, int]:
    """``(start, height)`` of the perfect subtree of ``D[size]`` that holds leaf ``index``.

    RFC 9162's tree over ``size`` leaves is the perfect subtrees of ``size``'s binary digits,
    largest first, joined along the right border. Every leaf of one of them has the same proof
    above it: :func:`inclusion_path` of the leaf is the ``height`` siblings ``(level, (index >>
    level) ^ 1)`` inside the subtree, then what :func:`inclusion_path` gives ``start`` past its
    first ``height`` elements."""
    _check_index(index, size)
    start, rest = 0, size
    while True:
        height = rest.bit_length() - 1
        if index < start + (1 << height):
            return start, height
        start += 1 << height
        rest -= 1 << height


def consistency_proof_plan(size1: int, size2: int) -> Plan:
    """RFC 9162 §2.1.4.1 ``PROOF(size1, D[size2])`` as perfect-node groups, in proof order.

    Iterative form of ``SUBPROOF(m, D[n], b)``: descend while the old tree's edge ``size1`` is
    inside the current range; ``b`` turns false once we step into a right subtree, in which case
    the subtree ending exactly at ``size1`` is itself part of the proof. ``size1 == size2`` gives
    the empty proof. Raises :class:`~ledger.errors.InvalidInput` (code ``invalid_sizes``) unless
    ``0 < size1 <= size2``.
    """
    if not 0 < size1 <= size2:
        raise InvalidInput(
            f"no consistency proof from size {size1} to {size2}",
            code="invalid_sizes",
            size1=size1,
            size2=size2,
        )
    ranges: list[tuple[int, int]] = []
    lo, hi, whole = 0, size2, True
    while hi != size1:
        mid = lo + (1 << ((hi - lo - 1).bit_length() - 1))
        if size1 <= mid:
            ranges.append((mid, hi))
            hi = mid
        else:
            ranges.append((lo, mid))
            lo, whole = mid, False
    if not whole:
        ranges.append((lo, hi))
    ranges.reverse()
    return [perfect_nodes_for_range(a, b) for a, b in ranges]


def root_plan(size: int) -> list[NodeId]:
    """The perfect nodes whose right-fold is the root of the tree of ``size`` (§2.1.1); empty for 0."""
    if size < 0:
        raise InvalidInput(f"invalid tree size {size}", code="invalid_sizes", size=size)
    return perfect_nodes_for_range(0, size)


def plan_nodes(plan: Iterable[Iterable[NodeId]]) -> list[NodeId]:
    """Every distinct node a plan needs, in first-use order — one batched storage read."""
    return list(dict.fromkeys(n for group in plan for n in group))


def fold(group: Sequence[NodeId], nodes: Mapping[NodeId, bytes]) -> bytes:
    """Right-fold one group of perfect nodes into ``MTH`` of the range they cover (§2.1.1)."""
    hashes: list[bytes] = []
    for n in group:
        try:
            hashes.append(nodes[n])
        except KeyError:
            raise MissingNodeError(n) from None
    return _fold_hashes(hashes)


def assemble(plan: Iterable[Sequence[NodeId]], nodes: Mapping[NodeId, bytes]) -> list[bytes]:
    """Turn a proof plan and the stored node hashes into the RFC 9162 proof (one hash per group)."""
    return [fold(group, nodes) for group in plan]


# --------------------------------------------------------------------------------------------
# Compact range: the tree's right border, for appends


class CompactRange:
    """The frontier of a tree of ``size`` leaves: one perfect-node hash per set bit of ``size``,
    highest level (leftmost) first. Immutable; :meth:`append` returns a new one.

    This is all an appender needs: adding a leaf merges it with the frontier nodes of the levels
    where ``size`` has trailing one bits (binary carry), and the root is the right-fold of the
    frontier (RFC 9162 §2.1.1). Storage loads the nodes named by :meth:`frontier_ids`.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self, *, size: int, hashes: Sequence[bytes]) -> None:
        if size < 0:
            raise InvalidInput(f"invalid tree size {size}", code="invalid_sizes", size=size)
        if len(hashes) != size.bit_count():
            raise InvalidInput(
                f"a tree of size {size} has {size.bit_count()} frontier nodes, got {len(hashes)}",
                code="invalid_frontier",
            )
        for i, h in enumerate(hashes):
            if len(h) != HASH_SIZE:
                raise InvalidInput(
                    f"frontier[{i}] is {len(h)} bytes, want {HASH_SIZE}", code="invalid_frontier"
                )
        self._size = size
        self._hashes = tuple(hashes)

    @classmethod
    def empty(cls) -> CompactRange:
        """The frontier of the empty tree."""
        return cls(size=0, hashes=())

    @classmethod
    def from_nodes(cls, size: int, nodes: Mapping[NodeId, bytes]) -> CompactRange:
        """Build from stored perfect nodes (those named by :meth:`frontier_ids`)."""
        return cls(size=size, hashes=[fold([n], nodes) for n in cls.frontier_ids(size)])

    @staticmethod
    def frontier_ids(size: int) -> list[NodeId]:
        """The ``(level, index)`` of each frontier node of a tree of ``size``, left to right."""
        return root_plan(size)

    @property
    def size(self) -> int:
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        return self._hashes

    def nodes(self) -> list[tuple[NodeId, bytes]]:
        """The frontier as ``((level, index), hash)`` pairs, left to right."""
        return list(zip(self.frontier_ids(self._size), self._hashes, strict=True))

    def root(self) -> bytes:
        """``MTH`` of the whole tree (RFC 9162 §2.1.1); :data:`EMPTY_ROOT` when empty."""
        return _fold_hashes(self._hashes)

    def append(self, leaf_hashes: Iterable[bytes]) -> tuple[list[tuple[NodeId, bytes]], CompactRange]:
        """Append leaves; return every perfect node completed (leaves at level 0 included, in
        completion order: each leaf, then the parents it completes bottom-up) and the new frontier.

        Every stored node is written exactly once, when it becomes complete, so storage can
        insert them without updates. Pure Python, hashlib directly, no per-node objects beyond
        the output tuples: about a microsecond per leaf.
        """
        stack = list(self._hashes)
        push, pop = stack.append, stack.pop
        out: list[tuple[NodeId, bytes]] = []
        emit = out.append
        sha = _sha256
        size = self._size
        # The output is ~2 small tuples per node and holds no cycles: callers appending many
        # leaves pause the cyclic GC (``ledger.gcpause``, as ``LogStore.append`` does) — letting
        # it rescan the growing list costs 3-4x the hashing itself at 1M leaves.
        for h in leaf_hashes:
            if len(h) != HASH_SIZE:
                raise InvalidInput(
                    f"leaf hash {size} is {len(h)} bytes, want {HASH_SIZE}", code="invalid_hash_length"
                )
            emit(((0, size), h))
            s, level = size, 0
            while s & 1:
                h = sha(b"\x01" + pop() + h).digest()
                s >>= 1
                level += 1
                emit(((level, s), h))
            push(h)
            size += 1
        new = CompactRange.__new__(CompactRange)
        new._size = size
        new._hashes = tuple(stack)
        return out, new

    def extend(self, leaf_hashes: Iterable[bytes]) -> CompactRange:
        """The frontier after appending ``leaf_hashes``, without the completed nodes: what an
        audit folding a whole log needs (``append`` builds two tuples per node it reports)."""
        stack = list(self._hashes)
        push, pop = stack.append, stack.pop
        sha = _sha256
        size = self._size
        for h in leaf_hashes:
            if len(h) != HASH_SIZE:
                raise InvalidInput(
                    f"leaf hash {size} is {len(h)} bytes, want {HASH_SIZE}", code="invalid_hash_length"
                )
            s = size
            while s & 1:
                h = sha(b"\x01" + pop() + h).digest()
                s >>= 1
            push(h)
            size += 1
        new = CompactRange.__new__(CompactRange)
        new._size = size
        new._hashes = tuple(stack)
        return new

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CompactRange):
            return NotImplemented
        return self._size == other._size and self._hashes == other._hashes

    def __hash__(self) -> int:
        return hash((self._size, self._hashes))

    def __repr__(self) -> str:
        return f"CompactRange(size={self._size}, root=0x{self.root().hex()})"
