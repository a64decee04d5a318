"""Reusable test helpers (real external services for integration tests; no mocks of them)."""
