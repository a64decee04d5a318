"""Rule 1 of the house: ``api`` -> ``ledger`` only, and pure modules do no I/O."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LEDGER = ROOT / "ledger"

PURE = [
    "ledger/errors.py",
    "ledger/types.py",
    "ledger/canonical.py",
    "ledger/workdays.py",
    "ledger/log/merkle.py",
    "ledger/log/layout.py",
    "ledger/log/_reference.py",
    "ledger/identity/uscc.py",
    "ledger/identity/id_number.py",
    "ledger/log/note.py",
    "ledger/gateway/masking.py",
    "ledger/gateway/query.py",
    "ledger/gateway/shaping.py",
    "ledger/text.py",
]
# What a pure module may import: computation only — no files, sockets, processes, databases, chains.
PURE_ALLOWED = {
    "__future__",
    "typing",
    "collections",
    "dataclasses",
    "enum",
    "functools",
    "itertools",
    "math",
    "re",
    "hashlib",
    "json",
    "hmac",
    "base64",
    "binascii",
    "datetime",
    "warnings",
    "unicodedata",
    "abc",
    "operator",
    "bisect",
    "struct",
    "gc",
    "cryptography",
    "decimal",
    "string",
    "rfc8785",
    "chinese_calendar",
    "ledger",
}
IO_CALLS = {"open", "exec", "eval", "__import__", "input"}


def _imports(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, node.lineno))
    return found


def test_ledger_never_imports_api() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in LEDGER.rglob("*.py")
        for name, line in _imports(path)
        if name == "api" or name.startswith("api.")
    ]
    assert offenders == []


@pytest.mark.parametrize("rel", PURE)
def test_pure_module_does_no_io(rel: str) -> None:
    path = ROOT / rel
    assert path.is_file(), f"pure module {rel} is missing"
    bad = [
        f"{rel}:{line} imports {name}"
        for name, line in _imports(path)
        if name.split(".")[0] not in PURE_ALLOWED
    ]
    ledger_deps = [name for name, _ in _imports(path) if name.startswith("ledger")]
    bad += [f"{rel} imports impure {dep}" for dep in ledger_deps if f"{dep.replace('.', '/')}.py" not in PURE]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    bad += [
        f"{rel}:{node.lineno} calls {node.func.id}()"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in IO_CALLS
    ]
    assert bad == []


def test_layering_check_catches_a_violation(tmp_path: Path) -> None:
    """The checker itself must be able to fail."""
    bad = tmp_path / "bad.py"
    bad.write_text("import sqlite3\nfrom api.app import create_app\nopen('x')\n", encoding="utf-8")
    names = [n for n, _ in _imports(bad)]
    assert "sqlite3" in names and "api.app" in names
