"""Settings, all from the environment (``SHARETRAIL_*``), with working defaults (DESIGN.md)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SHARETRAIL_", extra="ignore", frozen=True)

    data_dir: Path = Field(default=Path("./.sharetrail"), description="where keys, the chain and SQLite live")
    db_url: str | None = Field(default=None, description="SQLAlchemy URL; default SQLite in the data dir")
    chain: str = Field(default="embedded", description="'embedded' or an http(s):// JSON-RPC URL")
    bootstrap_token: str | None = Field(default=None, description="the registrar's API token on first start")
    origin: str = Field(default="sharetrail.local/log", description="C2SP checkpoint origin line")
    suspension_cache_seconds: float = Field(
        default=2.0, ge=0, description="how long an on-chain status, and the party of a token, are cached"
    )
    max_body_bytes: int = Field(
        default=1_048_576, gt=0, description="larger request bodies are refused (413)"
    )
    anchor_interval: float = Field(default=2.0, gt=0, description="seconds between anchors while leaves pend")
    anchor_batch: int = Field(default=1000, gt=0, description="anchor at once when this many leaves pend")
    chain_timeout: float = Field(default=30.0, gt=0, description="seconds before a JSON-RPC request fails")
    onchain_levels: str = Field(
        default="4",
        description="comma-separated resource levels whose accesses each get their own transaction",
    )
    anchor_loop: bool = Field(default=True, description="run the anchoring loop inside `serve`")
    source_roots: str = Field(
        default="",
        description="os.pathsep-separated directories data-source files (and SQLite sources) must live "
        "under; default <data_dir>/sources",
    )
    k_anonymity: int = Field(default=5, ge=2, description="aggregate groups smaller than this are withheld")
    grant_cache_seconds: float = Field(
        default=5.0, ge=0, description="how long the gateway caches a grant read from chain"
    )
    subject_token_days: int = Field(default=30, gt=0, description="lifetime of a data subject's token")
    alert_denied_burst: int = Field(default=5, ge=2, description="refusals in the burst window that alert")
    alert_burst_minutes: int = Field(default=10, gt=0, description="the denied-burst window, minutes")
    alert_spike_min: int = Field(default=50, gt=0, description="fewest accesses in a day that can be a spike")
    alert_bulk_records: int = Field(default=1000, gt=0, description="records per access that count as bulk")
    alert_monitor: bool = Field(
        default=True, description="run the alert monitor (rules as events arrive) inside `serve`"
    )
    alert_interval: float = Field(
        default=2.0, gt=0, le=3600, description="seconds between the alert monitor's passes over new entries"
    )
    alert_deadline_interval: float = Field(
        default=300.0,
        gt=0,
        le=86400,
        description="seconds between the monitor's checks of overdue requests, disputes and stale entries",
    )
    alert_baseline_days: int = Field(
        default=28, ge=2, le=366, description="days before a day that make a party's volume baseline"
    )
    stat_rollup: bool = Field(
        default=True, description="run the statistics rollup worker (exchange counts per day) inside `serve`"
    )
    stat_rollup_interval: float = Field(
        default=2.0, gt=0, le=3600, description="seconds between the rollup worker's passes over new entries"
    )
    stat_rollup_batch: int = Field(
        default=50_000, gt=0, le=10_000_000, description="log entries the rollup worker adds per transaction"
    )
    subject_indexer: bool = Field(
        default=True,
        description="run the data-subject indexer (fills the subject index from the log) inside `serve`",
    )
    subject_index_interval: float = Field(
        default=2.0, gt=0, le=3600, description="seconds between the subject indexer's passes over the log"
    )
    max_stream_rows: int = Field(
        default=5_000_000, gt=0, description="upper bound on rows of one streamed (NDJSON) access"
    )
    sqlite_cache_mib: int = Field(
        default=256,
        ge=2,
        le=1_048_576,
        description="page cache of each SQLite connection, MiB (taken as used)",
    )

    @field_validator("chain")
    @classmethod
    def _chain(cls, value: str) -> str:
        if value != "embedded" and not value.startswith(("http://", "https://")):
            raise ValueError("SHARETRAIL_CHAIN must be 'embedded' or an http(s):// JSON-RPC URL")
        return value

    @property
    def database_url(self) -> str:
        if self.db_url:
            return self.db_url
        return f"sqlite:///{(self.data_dir / 'sharetrail.sqlite').resolve()}"

    @property
    def onchain_level_set(self) -> frozenset[int]:
        return frozenset(int(x) for x in self.onchain_levels.split(",") if x.strip())

    @field_validator("onchain_levels")
    @classmethod
    def _levels(cls, value: str) -> str:
        parts = [x.strip() for x in value.split(",") if x.strip()]
        if any(p not in {"1", "2", "3", "4"} for p in parts):
            raise ValueError("SHARETRAIL_ONCHAIN_LEVELS lists levels 1-4, e.g. '4' or '3,4'")
        return ",".join(parts)

    @property
    def source_root_paths(self) -> list[Path]:
        parts = [p for p in self.source_roots.split(os.pathsep) if p.strip()]
        roots = [Path(p) for p in parts] or [self.data_dir / "sources"]
        return [r.resolve() for r in roots]

    @property
    def is_embedded(self) -> bool:
        return self.chain == "embedded"
