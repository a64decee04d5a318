"""The public RFC 6962 / RFC 9162 test vectors (transparency-dev/merkle ``testdata/``) against
:mod:`ledger.log.merkle`.

Every JSON file under ``shared/vectors/rfc6962`` is one test id. A ``happy-path.json`` must verify;
every other file is a named corruption of it and must raise the *exact* VerificationError subclass
listed below — the vectors only say ``wantErr``, so which check has to catch each corruption is
decided here, explicitly, and a new kind of corruption fails until someone classifies it.
The directory is located next to the repository (``/work/shared`` beside ``/work/main``) or by
``SHARETRAIL_VECTORS_DIR``; if it is missing the suite fails rather than skips.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest

from ledger.errors import VerificationError
from ledger.log.merkle import (
    HASH_SIZE,
    HashLengthError,
    IndexOutOfRangeError,
    InvalidSizesError,
    ProofLengthError,
    RootMismatchError,
    verify_consistency,
    verify_inclusion,
)

VECTORS_DIR = Path(
    os.environ.get("SHARETRAIL_VECTORS_DIR")
    or Path(__file__).resolve().parents[2].parent / "shared" / "vectors" / "rfc6962"
)

ErrorType = type[VerificationError]

# Corruptions whose expected error follows from the name alone.
BY_NAME: dict[str, ErrorType] = {
    # Hashes that are not 32 bytes: "WrongLeaf"/"WrongRoot" (9 bytes) or empty strings.
    "wrong-leaf": HashLengthError,
    "wrong-root1": HashLengthError,
    "wrong-root2": HashLengthError,
    "empty-leaf": HashLengthError,
    "empty-root-and-leaf": HashLengthError,
    "preceding-garbage": HashLengthError,
    "trailing-garbage": HashLengthError,
    # One hash too many or too few: the length is fixed by the sizes (RFC 9162 §2.1.3/§2.1.4).
    "inserted-component": ProofLengthError,
    "removed-component": ProofLengthError,
    "preceding-root": ProofLengthError,
    "trailing-root": ProofLengthError,
    "preceding-proof-@0": ProofLengthError,
    "preceding-root1": ProofLengthError,
    "preceding-root2": ProofLengthError,
    "trailing-root1": ProofLengthError,
    "trailing-root2": ProofLengthError,
    "truncated-proof": ProofLengthError,
    "empty-proof": ProofLengthError,
    # Right shape, wrong content.
    "random-root": RootMismatchError,
    "swapped-roots": RootMismatchError,
    "empty-root": RootMismatchError,  # SHA-256("") as the root; see single-entry override
}
BY_PREFIX: dict[str, ErrorType] = {"modified-proof": RootMismatchError}

# Corruptions of an index or a size: the first precondition that breaks depends on the numbers,
# so each is spelled out (first failing check in order: index/sizes, proof length, roots).
BY_PATH: dict[str, ErrorType] = {
    "inclusion/single-entry/empty-root.json": HashLengthError,  # a 0-byte root
    # inclusion/0: leaf 0 of a 1-leaf tree, empty proof
    "inclusion/0/leafIdx-XOR-@2.json": IndexOutOfRangeError,  # 2 >= 1
    "inclusion/0/leafIdx-plus-@1.json": IndexOutOfRangeError,  # 1 >= 1
    "inclusion/0/leafIdx-sub-@1.json": IndexOutOfRangeError,  # 2^64-1 (uint64 wrap)
    "inclusion/0/treeSize-div-@2.json": IndexOutOfRangeError,  # size 0: the empty tree has no leaf
    "inclusion/0/treeSize-mul-@2.json": ProofLengthError,  # size 2 needs 1 hash
    # inclusion/1: leaf 0 of 8, 3 hashes
    "inclusion/1/leafIdx-XOR-@2.json": RootMismatchError,  # leaf 2 of 8 also needs 3
    "inclusion/1/leafIdx-plus-@1.json": RootMismatchError,
    "inclusion/1/leafIdx-sub-@1.json": IndexOutOfRangeError,  # 2^64-1
    "inclusion/1/treeSize-div-@2.json": ProofLengthError,  # size 4 needs 2
    "inclusion/1/treeSize-mul-@2.json": ProofLengthError,  # size 16 needs 4
    # inclusion/2: leaf 5 of 8, 3 hashes
    "inclusion/2/leafIdx-XOR-@2.json": RootMismatchError,
    "inclusion/2/leafIdx-plus-@1.json": RootMismatchError,
    "inclusion/2/leafIdx-sub-@1.json": RootMismatchError,
    "inclusion/2/treeSize-div-@2.json": IndexOutOfRangeError,  # 5 >= 4
    "inclusion/2/treeSize-mul-@2.json": ProofLengthError,
    # inclusion/3: leaf 2 of 3, 1 hash
    "inclusion/3/leafIdx-XOR-@2.json": ProofLengthError,  # leaf 0 of 3 needs 2
    "inclusion/3/leafIdx-plus-@1.json": IndexOutOfRangeError,  # 3 >= 3
    "inclusion/3/leafIdx-sub-@1.json": ProofLengthError,  # leaf 1 of 3 needs 2
    "inclusion/3/treeSize-div-@2.json": IndexOutOfRangeError,  # 2 >= 1
    "inclusion/3/treeSize-mul-@2.json": ProofLengthError,  # leaf 2 of 6 needs 3
    # inclusion/4: leaf 1 of 5, 3 hashes
    "inclusion/4/leafIdx-XOR-@2.json": RootMismatchError,
    "inclusion/4/leafIdx-plus-@1.json": RootMismatchError,
    "inclusion/4/leafIdx-sub-@1.json": RootMismatchError,
    "inclusion/4/treeSize-div-@2.json": ProofLengthError,  # leaf 1 of 2 needs 1
    "inclusion/4/treeSize-mul-@2.json": ProofLengthError,
    # consistency/1: 1 -> 8, 3 hashes
    "consistency/1/size1-XOR-@2.json": ProofLengthError,  # 3 -> 8 needs 4
    "consistency/1/size1-plus-@1.json": ProofLengthError,  # 2 -> 8 needs 2
    "consistency/1/size1-sub-@1.json": InvalidSizesError,  # from the empty tree
    "consistency/1/size2-div-@2.json": ProofLengthError,  # 1 -> 4 needs 2
    "consistency/1/size2-mul-@2.json": ProofLengthError,  # 1 -> 16 needs 4
    # consistency/2: 6 -> 8, 3 hashes
    "consistency/2/size1-XOR-@2.json": ProofLengthError,  # 4 -> 8 needs 1
    "consistency/2/size1-plus-@1.json": ProofLengthError,  # 7 -> 8 needs 4
    "consistency/2/size1-sub-@1.json": ProofLengthError,  # 5 -> 8 needs 4
    "consistency/2/size2-div-@2.json": InvalidSizesError,  # 6 > 4
    "consistency/2/size2-mul-@2.json": ProofLengthError,
    # consistency/3: 2 -> 5, 2 hashes
    "consistency/3/size1-XOR-@2.json": InvalidSizesError,  # from the empty tree
    "consistency/3/size1-plus-@1.json": ProofLengthError,
    "consistency/3/size1-sub-@1.json": ProofLengthError,
    "consistency/3/size2-div-@2.json": ProofLengthError,  # 2 -> 2 needs an empty proof
    "consistency/3/size2-mul-@2.json": ProofLengthError,
    # consistency/4: 6 -> 7, 3 hashes
    "consistency/4/size1-XOR-@2.json": ProofLengthError,
    "consistency/4/size1-plus-@1.json": ProofLengthError,  # 7 -> 7 needs an empty proof
    "consistency/4/size1-sub-@1.json": ProofLengthError,
    "consistency/4/size2-div-@2.json": InvalidSizesError,  # 6 > 3
    "consistency/4/size2-mul-@2.json": ProofLengthError,
}


def _vector_files() -> list[Path]:
    return sorted(VECTORS_DIR.glob("*/*/*.json")) if VECTORS_DIR.is_dir() else []


VECTOR_FILES = _vector_files()


def _rel(path: Path) -> str:
    return path.relative_to(VECTORS_DIR).as_posix()


def _expected_error(rel: str) -> ErrorType:
    if rel in BY_PATH:
        return BY_PATH[rel]
    name = rel.rsplit("/", 1)[-1].removesuffix(".json")
    if name in BY_NAME:
        return BY_NAME[name]
    for prefix, error in BY_PREFIX.items():
        if name.startswith(prefix):
            return error
    raise AssertionError(f"unclassified corrupted vector {rel}: add it to BY_NAME/BY_PATH")


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value) if value else b""


def _verify(kind: str, case: dict[str, Any]) -> None:
    proof = [_b64(p) for p in case["proof"] or []]
    if kind == "inclusion":
        verify_inclusion(_b64(case["leafHash"]), case["leafIdx"], case["treeSize"], proof, _b64(case["root"]))
    elif kind == "consistency":
        verify_consistency(case["size1"], case["size2"], _b64(case["root1"]), _b64(case["root2"]), proof)
    else:
        raise AssertionError(f"unknown vector kind {kind!r}")


def test_vectors_are_present() -> None:
    """Fail, never skip, when the shared vectors cannot be found."""
    assert VECTORS_DIR.is_dir(), f"test vectors not found at {VECTORS_DIR} (set SHARETRAIL_VECTORS_DIR)"
    assert len(VECTOR_FILES) > 0
    kinds = {p.parent.parent.name for p in VECTOR_FILES}
    assert kinds == {"inclusion", "consistency"}
    for case_dir in {p.parent for p in VECTOR_FILES}:
        assert (case_dir / "happy-path.json").is_file() or case_dir.name == "single-entry", case_dir
    assert not set(BY_PATH) - {_rel(p) for p in VECTOR_FILES}, "BY_PATH names files that do not exist"


@pytest.mark.parametrize(
    "path",
    VECTOR_FILES or [VECTORS_DIR / "missing"],
    ids=[_rel(p) for p in VECTOR_FILES] or ["vectors-missing"],
)
def test_vector(path: Path) -> None:
    case = json.loads(path.read_text(encoding="utf-8"))
    kind = path.parent.parent.name
    rel = _rel(path)
    if not case["wantErr"]:
        assert path.name in {"happy-path.json", "matching-root-and-leaf.json"}, rel
        _verify(kind, case)
        return
    expected = _expected_error(rel)
    with pytest.raises(VerificationError) as info:
        _verify(kind, case)
    err = info.value
    assert type(err) is expected, f"{rel}: got {type(err).__name__} ({err}), want {expected.__name__}"
    assert err.code == expected.code
    if isinstance(err, ProofLengthError):
        assert err.actual == len(case["proof"] or []) != err.expected
    elif isinstance(err, RootMismatchError):
        assert err.expected != err.calculated
        assert len(err.calculated) == HASH_SIZE
    elif isinstance(err, HashLengthError):
        assert err.length != HASH_SIZE
