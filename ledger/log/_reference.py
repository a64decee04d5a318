"""Naive recursive Merkle tree definitions, transcribed from RFC 9162 §2.1 (= RFC 6962 §2.1).

This is the *specification* in executable form, not production code: every function is the
textbook recursion over the whole list of leaf hashes, O(n) per proof. It exists so that the
fast, storage-planned code in :mod:`ledger.log.merkle` can be checked against it property by
property (transparency-dev/merkle habit), and as documentation of what the proofs mean.

It deliberately shares no code with :mod:`ledger.log.merkle` — not even the hashing helpers — so
that a mistake in one cannot hide the same mistake in the other.

All functions take the list of *leaf hashes* ``SHA-256(0x00 ‖ entry)``, so that
``MTH({d(0)}) = leaf hash`` and the RFC's ``MTH(D[k:n])`` becomes ``mth(leaf_hashes[k:n])``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def _node(left: bytes, right: bytes) -> bytes:
    """RFC 9162 §2.1.1: interior node hash ``SHA-256(0x01 ‖ left ‖ right)``."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """RFC 9162 §2.1.1: ``k``, the largest power of two smaller than ``n`` (``n > 1``)."""
    return 1 << ((n - 1).bit_length() - 1)


def mth(leaf_hashes: Sequence[bytes]) -> bytes:
    """RFC 9162 §2.1.1 Merkle Tree Hash: ``MTH({}) = SHA-256()``; one leaf is its leaf hash;
    otherwise ``SHA-256(0x01 ‖ MTH(D[0:k]) ‖ MTH(D[k:n]))``."""
    n = len(leaf_hashes)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaf_hashes[0]
    k = _split(n)
    return _node(mth(leaf_hashes[:k]), mth(leaf_hashes[k:]))


def _path(m: int, d: Sequence[bytes]) -> list[bytes]:
    """RFC 9162 §2.1.3.1 ``PATH(m, D[n])``."""
    n = len(d)
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return [*_path(m, d[:k]), mth(d[k:])]
    return [*_path(m - k, d[k:]), mth(d[:k])]


def inclusion_proof(index: int, size: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """RFC 9162 §2.1.3.1: the audit path of leaf ``index`` in the tree of the first ``size`` leaves."""
    if not 0 <= index < size <= len(leaf_hashes):
        raise ValueError(f"need 0 <= index ({index}) < size ({size}) <= {len(leaf_hashes)}")
    return _path(index, leaf_hashes[:size])


def _subproof(m: int, d: Sequence[bytes], b: bool) -> list[bytes]:
    """RFC 9162 §2.1.4.1 ``SUBPROOF(m, D[n], b)``."""
    n = len(d)
    if m == n:
        return [] if b else [mth(d)]
    k = _split(n)
    if m <= k:
        return [*_subproof(m, d[:k], b), mth(d[k:])]
    return [*_subproof(m - k, d[k:], False), mth(d[:k])]


def consistency_proof(size1: int, size2: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """RFC 9162 §2.1.4.1 ``PROOF(m, D[n]) = SUBPROOF(m, D[n], true)`` for ``0 < m <= n``."""
    if not 0 < size1 <= size2 <= len(leaf_hashes):
        raise ValueError(f"need 0 < size1 ({size1}) <= size2 ({size2}) <= {len(leaf_hashes)}")
    return _subproof(size1, leaf_hashes[:size2], True)


def root_from_inclusion_proof(index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes]) -> bytes:
    """The root that ``proof`` implies, read back through the ``PATH`` recursion (§2.1.3.1).

    The definition-level meaning of inclusion verification: ``verify_inclusion`` must accept
    exactly when the proof has the right length and this equals the claimed root. Raises
    ``ValueError`` when the proof's length does not fit ``PATH(index, D[size])``.
    """
    if not 0 <= index < size:
        raise ValueError(f"need 0 <= index ({index}) < size ({size})")
    if size == 1:
        if proof:
            raise ValueError("proof too long")
        return leaf_hash
    if not proof:
        raise ValueError("proof too short")
    k = _split(size)
    *rest, last = proof
    if index < k:
        return _node(root_from_inclusion_proof(index, k, leaf_hash, rest), last)
    return _node(last, root_from_inclusion_proof(index - k, size - k, leaf_hash, rest))


def _roots_from_subproof(
    m: int, n: int, proof: Sequence[bytes], b: bool, root1: bytes
) -> tuple[bytes, bytes]:
    """Read ``SUBPROOF(m, D[n], b)`` (§2.1.4.1) back into (MTH(D[0:m]), MTH(D[0:n])) of the subtree."""
    if m == n:
        if b:
            if proof:
                raise ValueError("proof too long")
            return root1, root1
        if len(proof) != 1:
            raise ValueError("proof has the wrong length")
        return proof[0], proof[0]
    if not proof:
        raise ValueError("proof too short")
    k = _split(n)
    *rest, last = proof
    if m <= k:
        old, new = _roots_from_subproof(m, k, rest, b, root1)
        return old, _node(new, last)
    old, new = _roots_from_subproof(m - k, n - k, rest, False, root1)
    return _node(last, old), _node(last, new)


def roots_from_consistency_proof(
    size1: int, size2: int, root1: bytes, proof: Sequence[bytes]
) -> tuple[bytes, bytes]:
    """The (old root, new root) that ``proof`` implies, read back through ``SUBPROOF`` (§2.1.4.1).

    Where the recursion reaches the old tree itself with ``b`` true the proof omits its hash and
    the verifier supplies ``root1`` (that is why §2.1.4.2 prepends ``first_hash`` when ``first`` is
    a power of two). ``verify_consistency`` must accept exactly when this returns
    ``(root1, root2)``. Raises ``ValueError`` when the proof's length does not fit.
    """
    if not 0 < size1 < size2:
        raise ValueError(f"need 0 < size1 ({size1}) < size2 ({size2})")
    return _roots_from_subproof(size1, size2, proof, True, root1)
