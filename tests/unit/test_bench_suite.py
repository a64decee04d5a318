"""Smoke test of ``sharetrail bench all --quick``: every section runs on the real things (SQLite,
uvicorn processes, the embedded chain, a Hardhat node for the multi-worker API load) and reports
figures beside their comparisons. PostgreSQL is left out here (the bench starts its own durable
server; the PostgreSQL paths of the figures are the same functions)."""

from __future__ import annotations

import pytest

from ledger.bench.suite import SuiteSizes, render, run_suite
from tests.support.evm_node import EvmNode, evm_node  # noqa: F401

pytestmark = pytest.mark.external_chain


@pytest.mark.timeout(600)
def test_quick_suite_reports_every_section(evm_node: EvmNode) -> None:  # noqa: F811
    result = run_suite(
        SuiteSizes.quick(), app_factory="api.app:create_app", postgres=False, chain_url=evm_node.url
    )

    assert {f.section for f in result.figures} == {"ingest", "merkle", "proofs", "verify", "trail", "api"}
    assert result.skipped == []
    for figure in result.figures:
        assert figure.value > 0 and figure.unit, figure
        assert figure.beside, figure
    ingest = [f for f in result.figures if f.section == "ingest"]
    assert [f.figure for f in ingest] == [
        "in-process LogStore.append, 1000/batch, SQLite",
        "HTTP POST /v1/access-events, 1000/request, 1 uvicorn worker, SQLite",
    ]
    assert all(f.n == 2000 for f in ingest)
    proofs = [f for f in result.figures if f.section == "proofs"]
    assert [f.figure.rsplit(", ", 1)[1] for f in proofs] == ["p50", "p99"]
    assert proofs[0].value <= proofs[1].value
    assert [f.figure.split(":")[0] for f in result.figures if f.section == "api"] == [
        "1 worker, SQLite",
        "2 workers, SQLite",
    ]
    assert all("errors" not in f.figure for f in result.figures if f.section == "api"), "a request failed"
    assert render(result).row_count == len(result.figures)
