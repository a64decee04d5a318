"""Smoke test of the share-workflow benchmark: every case runs on the real embedded chain, grants, and
reports rates and gas that make sense (the figures themselves are in docs/benchmarks.md)."""

from __future__ import annotations

import pytest
from rich.console import Console

from ledger.bench.share import CASES, GAS_STEPS, bench_share, render


@pytest.mark.timeout(30)
def test_bench_share_embedded_runs_every_case_and_reports_gas() -> None:
    result = bench_share(1, warmup=0)

    assert result["chain"] == "embedded"
    assert [c["case"] for c in result["cases"]] == list(CASES)
    assert [c["tx_per_grant"] for c in result["cases"]] == [2, 2, 3, 1, 2, 2]
    for case in [*result["cases"], result["revocation"]]:
        assert case["n"] == 1 and case["seconds"] > 0
        assert case["grants_per_s"] == pytest.approx(1 / case["seconds"])
    gas = result["gas"]
    assert set(gas) == set(GAS_STEPS)
    assert all(21_000 < used < 300_000 for used in gas.values()), gas
    # the auto-grant does in one transaction what request + decision do in two, for less gas
    assert gas["request + auto-grant"] < gas["request (conditional)"] + gas["decision → grant"]
    console = Console(width=160, record=True)
    console.print(render([result]))
    assert "contract calls only" in console.export_text()


def test_bench_share_refuses_an_empty_run() -> None:
    with pytest.raises(ValueError, match="n must be >= 1"):
        bench_share(0)
