"""Fuzzing ``verify_bundle``: no corrupted proof bundle is ever accepted.

Two genuine bundles are made once, on the real embedded chain served over ``/rpc`` by a live
server: a plain one and one for a level-4 access (whose leaf is also recorded on chain in its own
transaction, ``leaf_record``). Hypothesis then corrupts them — hex digits flipped in the entry,
proof hashes, root, anchor and leaf-record fields; integers moved; keys dropped, added or retyped;
proof elements dropped, added, duplicated, swapped; values replaced by any JSON value, including
deeply nested ones — and every corrupted bundle must be refused with the project's own error
(:class:`VerificationError`, or :class:`InvalidInput` for malformed structure), never accepted and
never a bare ``KeyError``/``TypeError``/``ValueError``.

Every mutation is semantic: it changes what the bundle asserts (hex compared case-insensitively,
entries compared by their canonical bytes), so a refusal is always due. Dropping the optional
evidence (``leaf_record``, ``checkpoint_note``) is not a corruption and is checked separately: the
bundle stays valid. ``grant`` is not exercised: it is always null today and verify_bundle does not
check grants yet (DESIGN "Proof bundle v1": the grant's signatures and status are to be checked on
chain).

500 cases run in the default suite; 10,000 with ``-m slow``.
"""

from __future__ import annotations

import base64
import copy
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import hypothesis
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck
from hypothesis import strategies as st

from api.app import create_app
from ledger.canonical import canonical_json
from ledger.errors import InvalidInput, VerificationError
from ledger.identity.uscc import make_uscc
from ledger.log.bundle import verify_bundle
from ledger.runtime import Ledger
from ledger.settings import Settings
from tests.support.catalog import publish
from tests.support.live import serve

BOOT = "st_bundle-fuzz"
OPTIONAL_EVIDENCE = ("leaf_record", "checkpoint_note")
OPTIONAL_PATHS = [(key,) for key in OPTIONAL_EVIDENCE]
NOT_EXERCISED = ("grant",)
MUTATIONS = [
    "flip_hex",
    "replace",
    "move_int",
    "drop_key",
    "add_entry_key",
    "proof",
    "note",
    "deep",
    "whole",
    "several",
]


@dataclass(frozen=True)
class Genuine:
    rpc: str
    bundles: tuple[dict[str, Any], ...]  # plain, and with an on-chain leaf record


@pytest.fixture(scope="module")
def genuine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Genuine]:
    tmp: Path = tmp_path_factory.mktemp("bundle-fuzz")
    settings = Settings(data_dir=tmp / "data", bootstrap_token=BOOT, anchor_loop=False)
    app = create_app(settings)
    boot = {"Authorization": f"Bearer {BOOT}"}
    with TestClient(app) as client, serve(app) as url:
        parties = {}
        for n, kind in enumerate(("operator", "department", "department")):
            r = client.post(
                "/v1/parties",
                json={"kind": kind, "name": f"{kind} {n}", "uscc": make_uscc(700 + n)},
                headers=boot,
            )
            assert r.status_code == 201, r.text
            parties[n] = r.json()
        provider = {"Authorization": f"Bearer {parties[2]['token']}"}
        publish(client, provider, "GY-MZ-001")
        publish(client, provider, "GY-MZ-004", level=4)  # its accesses are also recorded on chain
        when = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        events = [
            {
                "event_id": f"fuzz-{i}",
                "accessor": parties[1]["id"],
                "provider": parties[2]["id"],
                "resource": "GY-MZ-004" if i == 5 else "GY-MZ-001",
                "purpose": "social_assistance",
                "fields": ["name", "id_number"],
                "mode": "masked",
                "record_count": 12 + i,
                "time": when,
                "gateway": "exchange-platform-1",
                "query_hash": "0x" + f"{i:02x}" * 32,
                "result_hash": "0x" + "cd" * 32,
                **({"level": 4} if i == 5 else {}),
            }
            for i in range(7)
        ]
        r = client.post(
            "/v1/access-events", json=events, headers={"Authorization": f"Bearer {parties[0]['token']}"}
        )
        assert r.status_code == 201, r.text
        ledger: Ledger = app.state.ledger
        assert ledger.anchorer.anchor_once() is not None
        accessor = {"Authorization": f"Bearer {parties[1]['token']}"}
        bundles = tuple(client.get(f"/v1/proofs/access/{i}", headers=accessor).json() for i in (3, 5))
        assert bundles[0]["leaf_record"] is None and bundles[1]["leaf_record"] is not None
        for bundle in bundles:
            verify_bundle(bundle, f"{url}/rpc")
        yield Genuine(rpc=f"{url}/rpc", bundles=bundles)


# -- mutations ------------------------------------------------------------------------------------------

Path_ = tuple[str | int, ...]

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def _locations(value: Any, path: Path_ = ()) -> Iterator[Path_]:
    """Every location in the bundle, containers included (outside what is not exercised)."""
    if path:
        yield path
    if isinstance(value, dict):
        for key, inner in value.items():
            if not path and key in NOT_EXERCISED:
                continue
            yield from _locations(inner, (*path, key))
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield from _locations(inner, (*path, i))


def _get(bundle: Any, path: Path_) -> Any:
    for step in path:
        bundle = bundle[step]
    return bundle


def _set(bundle: Any, path: Path_, value: Any) -> None:
    _get(bundle, path[:-1])[path[-1]] = value


def _is_hex(value: Any) -> bool:
    if not isinstance(value, str) or not value.startswith("0x") or len(value) < 3:
        return False
    try:
        int(value[2:], 16)
    except ValueError:
        return False
    return True


def _same(a: Any, b: Any) -> bool:
    """Do two JSON values assert the same thing? (hex case-insensitively; objects canonically)"""
    if _is_hex(a) and _is_hex(b):
        return str(a).lower() == str(b).lower()
    if type(a) is not type(b):
        return False
    try:
        return canonical_json(a) == canonical_json(b)
    except InvalidInput:
        return False


def _in_entry(path: Path_) -> bool:
    return bool(path) and path[0] == "entry"


@st.composite
def corrupted(draw: st.DrawFn, bundles: tuple[dict[str, Any], ...]) -> tuple[str, Any]:
    """A (description, bundle) that differs from a genuine bundle in what it asserts."""
    original = draw(st.sampled_from(bundles))
    bundle = copy.deepcopy(original)
    kind = draw(st.sampled_from(MUTATIONS))
    if kind == "whole":
        replacement = draw(json_values | st.just([original]) | st.just(json.dumps(original)))
        hypothesis.assume(not _same_bundle(replacement, original))
        return "whole bundle replaced", replacement
    rounds = draw(st.integers(2, 4)) if kind == "several" else 1
    done: list[str] = []
    for _ in range(rounds):
        step = (
            draw(st.sampled_from(["flip_hex", "replace", "move_int", "proof"])) if kind == "several" else kind
        )
        done.append(_mutate(draw, bundle, step))
    hypothesis.assume(not _same_bundle(bundle, original))
    return "; ".join(done), bundle


def _same_bundle(mutated: Any, original: dict[str, Any]) -> bool:
    """Does ``mutated`` assert what ``original`` asserts? The entry counts by its canonical bytes (the
    leaf hash); dropping optional evidence (absent or null) asserts nothing false."""
    if not isinstance(mutated, dict):
        return False
    keys = set(mutated) | set(original)
    for key in keys:
        if key in OPTIONAL_EVIDENCE and mutated.get(key) is None:
            continue
        if key not in mutated or key not in original:
            return False
        if key == "entry":
            if not _same(mutated[key], original[key]):
                return False
        elif not _same_deep(mutated[key], original[key]):
            return False
    return True


def _same_deep(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return set(a) == set(b) and all(_same_deep(a[k], b[k]) for k in b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_deep(x, y) for x, y in zip(a, b, strict=True))
    return _same(a, b)


def _pick(draw: st.DrawFn, candidates: list[Path_]) -> Path_:
    """A location, the bundle's top-level part first: so the few anchor and leaf-record fields are
    hit as often as the many entry fields."""
    region = draw(st.sampled_from(sorted({str(p[0]) for p in candidates})))
    return draw(st.sampled_from([p for p in candidates if p[0] == region]))


def _mutate(draw: st.DrawFn, bundle: dict[str, Any], kind: str) -> str:
    locations = list(_locations(bundle))
    hexes = [p for p in locations if _is_hex(_get(bundle, p))]
    ints = [p for p in locations if type(_get(bundle, p)) is int]
    if (kind == "flip_hex" and not hexes) or (kind == "move_int" and not ints):
        kind = "replace"  # an earlier round of "several" replaced them all
    if kind == "flip_hex":
        path = _pick(draw, hexes)
        value: str = _get(bundle, path)
        at = draw(st.integers(2, len(value) - 1))
        old = int(value[at], 16)
        new = draw(st.sampled_from([d for d in "0123456789abcdef" if int(d, 16) != old]))
        _set(bundle, path, value[:at] + new + value[at + 1 :])
        return f"hex digit {at} of {path} {value[at]}->{new}"
    if kind == "replace":
        path = _pick(draw, locations)
        old_value = _get(bundle, path)
        new_value = draw(json_values)
        hypothesis.assume(not _same(old_value, new_value))
        _set(bundle, path, new_value)
        return f"{path} replaced by {new_value!r}"
    if kind == "move_int":
        path = _pick(draw, ints)
        old_int: int = _get(bundle, path)
        new_value = draw(
            st.sampled_from(
                [
                    *(old_int + 1, old_int - 1, -old_int - 1, 2 * old_int + 1, 2**64 + old_int, 2**256),
                    *(float(old_int), str(old_int), True, False, None, [old_int]),
                ]
            )
            | st.integers()
        )
        _set(bundle, path, new_value)
        return f"{path} {old_int} -> {new_value!r}"
    if kind == "drop_key":
        keyed = [p for p in locations if isinstance(p[-1], str) and p not in OPTIONAL_PATHS]
        path = _pick(draw, keyed)
        del _get(bundle, path[:-1])[path[-1]]
        return f"{path} dropped"
    if kind == "add_entry_key":
        key = draw(st.text(min_size=1, max_size=12))
        hypothesis.assume(key not in bundle["entry"])
        bundle["entry"][key] = draw(json_values)
        return f"entry[{key!r}] added"
    if kind == "proof":
        if not isinstance(bundle["inclusion_proof"], list):
            bundle["inclusion_proof"] = []
        proof: list[Any] = bundle["inclusion_proof"]
        ops = ["drop", "duplicate", "insert", "empty", "foreign"] + (
            ["swap", "reverse"] if len(proof) > 1 else []
        )
        op = draw(st.sampled_from(ops if proof else ["insert"]))
        if op == "drop":
            del proof[draw(st.integers(0, len(proof) - 1))]
        elif op == "duplicate":
            i = draw(st.integers(0, len(proof) - 1))
            proof.insert(i, proof[i])
        elif op == "insert":
            foreign = "0x" + draw(st.binary(min_size=32, max_size=32)).hex()
            proof.insert(draw(st.integers(0, len(proof))), foreign)
        elif op in ("swap", "reverse"):
            pair = st.lists(st.integers(0, len(proof) - 1), min_size=2, max_size=2, unique=True)
            i, j = (0, len(proof) - 1) if op == "reverse" else draw(pair)
            proof[i], proof[j] = proof[j], proof[i]
        elif op == "empty":
            proof.clear()
        else:
            proof[draw(st.integers(0, len(proof) - 1))] = bundle["root"]
        return f"inclusion_proof {op}"
    if kind == "note":
        lines = str(bundle["checkpoint_note"]).split("\n")
        if draw(st.booleans()):
            lines[1] = str(draw(st.integers(0, 2**40).filter(lambda n: str(n) != lines[1])))
        else:
            lines[2] = base64.b64encode(draw(st.binary(min_size=32, max_size=32))).decode()
        bundle["checkpoint_note"] = "\n".join(lines)
        return "checkpoint note's size or root changed"
    if kind == "deep":
        path = draw(st.sampled_from([p for p in locations if _in_entry(p)]))
        depth = draw(st.sampled_from([33, 65, 300]))  # far deeper: test_absurdly_deep_entry_is_refused
        as_objects = draw(st.booleans())
        nested: Any = 0
        for _ in range(depth):
            nested = {"k": nested} if as_objects else [nested]
        _set(bundle, path, nested)
        return f"{path} replaced by {depth}-deep {'objects' if as_objects else 'lists'}"
    raise AssertionError(kind)


def _refused(rpc: str, description: str, bundle: Any, seen: Counter[str]) -> None:
    try:
        verify_bundle(bundle, rpc, timeout=60)
    except (VerificationError, InvalidInput) as exc:
        assert exc.code and exc.message, description
        seen[exc.code] += 1
        return
    except Exception as exc:  # a bare Python error is a bug: verify must name what failed
        pytest.fail(f"{description}: {type(exc).__name__}: {exc}")
    pytest.fail(f"ACCEPTED a corrupted bundle: {description}")


# Codes that only checks against the chain produce: the fuzz must reach them, not stop at parsing.
DEEP_CODES = {"chain_id_mismatch", "anchor_tx_mismatch", "leaf_record_mismatch", "note_mismatch"}


def _run(genuine: Genuine, examples: int, derandomize: bool) -> None:
    seen: Counter[str] = Counter()

    @hypothesis.settings(
        max_examples=examples,
        deadline=None,
        derandomize=derandomize,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate, hypothesis.Phase.shrink],
    )
    @hypothesis.given(case=corrupted(genuine.bundles))
    def check(case: tuple[str, Any]) -> None:
        _refused(genuine.rpc, *case, seen)

    check()
    assert {"malformed_bundle", "root_mismatch"} <= set(seen), seen
    assert set(seen) >= DEEP_CODES, f"the fuzz never reached some on-chain checks: {seen}"


def test_corrupted_bundles_are_never_accepted(genuine: Genuine) -> None:
    _run(genuine, 500, derandomize=True)


@pytest.mark.slow
def test_ten_thousand_corrupted_bundles_are_never_accepted(genuine: Genuine) -> None:
    _run(genuine, 10_000, derandomize=False)


@pytest.mark.parametrize("depth", [5_000, 100_000])
def test_absurdly_deep_entry_is_refused_without_recursing(genuine: Genuine, depth: int) -> None:
    """Python's recursion limit is 100000 here (py-evm raises it), so a recursive canonicaliser would
    overflow the C stack and kill the process rather than raise: the depth is checked first."""
    for as_objects in (False, True):
        nested: Any = 0
        for _ in range(depth):
            nested = {"k": nested} if as_objects else [nested]
        bundle = {**genuine.bundles[0], "entry": {**genuine.bundles[0]["entry"], "fields": nested}}
        with pytest.raises(VerificationError) as info:
            verify_bundle(bundle, genuine.rpc)
        assert info.value.code == "malformed_bundle" and "nested deeper" in info.value.message


@pytest.mark.parametrize("drop", OPTIONAL_EVIDENCE)
def test_dropping_optional_evidence_keeps_a_bundle_valid(genuine: Genuine, drop: str) -> None:
    for original in genuine.bundles:
        for variant in ({k: v for k, v in original.items() if k != drop}, {**original, drop: None}):
            verify_bundle(variant, genuine.rpc)
