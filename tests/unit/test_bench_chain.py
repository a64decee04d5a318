"""Smoke test of the chain benchmark: it runs, on the real embedded chain, and reports honestly."""

from __future__ import annotations

import os

import pytest
from eth_keys.backends import get_backend_class

from ledger.bench.chain import NATIVE_BACKEND, Case, bench_in_subprocess, bench_registrations, render


@pytest.mark.timeout(10)
def test_bench_registrations_embedded_reports_rates_and_backend() -> None:
    result = bench_registrations(3, warmup=1)

    assert result["chain"] == "embedded"
    assert [c["case"] for c in result["cases"]] == [case.value for case in Case]
    for case in result["cases"]:
        assert case["n"] == 3
        assert case["seconds"] > 0
        assert case["tx_per_s"] == pytest.approx(3 / case["seconds"])
    # coincurve is a pinned dependency: unless the environment overrides it, eth-keys must use it.
    if "ECC_BACKEND_CLASS" in os.environ:
        assert result["backend"] == get_backend_class().__name__
    else:
        assert result["backend"] == "CoinCurveECCBackend"
    assert render([result]).row_count == len(Case)


def test_bench_registrations_refuses_empty_run() -> None:
    with pytest.raises(ValueError, match="n must be >= 1"):
        bench_registrations(0)


@pytest.mark.timeout(10)
def test_ecc_backend_env_really_switches_the_backend_in_the_subprocess() -> None:
    result = bench_in_subprocess(1, env={"ECC_BACKEND_CLASS": NATIVE_BACKEND})
    assert result["backend"] == "NativeECCBackend"
    assert all(case["tx_per_s"] > 0 for case in result["cases"])
