"""`sharetrail bench gateway` runs end to end at a tiny size and reports every mode beside its baseline."""

from __future__ import annotations

from ledger.bench.gateway import render, run_gateway_bench


def test_gateway_bench_smoke() -> None:
    results = run_gateway_bench(rows=300, n=3)
    assert [r["case"].split(",")[0].split(" ")[0] for r in results] == [
        "raw",
        "raw",
        "masked",
        "raw",
        "aggregate",
        "verify",
    ]
    assert results[1]["case"] == "raw, 1,000 rows, query source (general path)"
    assert all(r["gateway_ms"] > 0 and r["direct_ms"] > 0 and r["accesses_per_s"] > 0 for r in results)
    # Every access is logged: the log append is timed inside each access, and CPU time is counted.
    assert all(r["log_ms"] > 0 and r["cpu_ms"] > 0 for r in results)
    assert render(results).row_count == len(results)
