"""``sharetrail simulate``: a synthetic city written through the real services (issue 8, item 1).

- :mod:`ledger.sim.city` — the scale (default: Guiyang's 2021 figures) and the city's plan: the
  departments, their catalog, the share requests. Pure.
- :mod:`ledger.sim.skew` — who accesses what, when and how: hot resources, office hours, the
  statistics bureau as the heaviest accessor, mixed modes and purposes, some denials. Pure.
- :mod:`ledger.sim.run` — the driver: opens a ledger, writes the plan through the services, records
  the events through the log's batch path, anchors, verifies, and reports per-phase rates.

Deliberately empty, like :mod:`ledger.bench`: the pure modules must be importable without the runtime.
"""
