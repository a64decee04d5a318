"""Benchmarks that print figures (``sharetrail bench …``); docs/benchmarks.md records the results.

Deliberately empty: each benchmark module imports the whole runtime, and ``python -m
ledger.bench.chain`` (the subprocess that runs without coincurve) must not find its own module
already imported by this package.
"""
