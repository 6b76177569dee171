"""Settings of the market data service (environment variables; see `algotrade.config`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from algotrade.bars import TIMEFRAMES, normalize_symbol
from algotrade.config import SERVICE_PORTS, ServiceSettings


class Settings(ServiceSettings):
    port: int = Field(default=SERVICE_PORTS["market-data-service"], ge=1, le=65535)

    # Redis sliding windows
    window_capacity: int = Field(default=10_000, ge=10, le=1_000_000)
    latest_max_limit: int = Field(default=10_000, ge=1)

    # HTTP push: a 5,000-bar batch is ~0.5 MB of compact JSON, ~0.9 MB with per-bar symbol,
    # timeframe and long floats; 4 MiB leaves room for pretty-printed bodies, nothing more.
    batch_max_bars: int = Field(default=5_000, ge=1, le=100_000)
    bars_max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    bars_per_event: int = Field(default=500, ge=1, le=5_000)

    # History reads
    history_page_max: int = Field(default=10_000, ge=1)
    gap_report_max_bars: int = Field(default=2_000_000, ge=1)
    resample_max_source_bars: int = Field(default=5_000_000, ge=1)

    # File imports
    import_dir: Path | None = None
    import_spool_dir: Path | None = None
    import_max_upload_bytes: int = Field(default=200 * 1024 * 1024, ge=1024)
    import_chunk_rows: int = Field(default=5_000, ge=100, le=100_000)
    import_max_reported_errors: int = Field(default=100, ge=1, le=10_000)
    import_concurrency: int = Field(default=2, ge=1, le=16)

    # Replays
    replay_max_active_per_user: int = Field(default=5, ge=1)
    replay_progress_seconds: float = Field(default=1.0, gt=0)

    # Coinbase Exchange public WebSocket provider (off unless enabled)
    coinbase_enabled: bool = False
    coinbase_products: list[str] = Field(default_factory=lambda: ["BTC-USD"])
    coinbase_ws_url: str = "wss://ws-feed.exchange.coinbase.com"
    coinbase_rest_url: str = "https://api.exchange.coinbase.com"
    coinbase_backfill: bool = True
    coinbase_max_backfill_minutes: int = Field(default=24 * 60, ge=0)
    coinbase_derive_timeframes: list[str] = Field(default_factory=lambda: ["5m", "15m", "1h", "1d"])
    coinbase_reconnect_initial_seconds: float = Field(default=0.5, gt=0)
    coinbase_reconnect_max_seconds: float = Field(default=30.0, gt=0)

    @field_validator("coinbase_products")
    @classmethod
    def _normalise_products(cls, value: list[str]) -> list[str]:
        return [normalize_symbol(p) for p in value]

    @field_validator("coinbase_derive_timeframes")
    @classmethod
    def _known_timeframes(cls, value: list[str]) -> list[str]:
        unknown = [tf for tf in value if tf not in TIMEFRAMES or tf == "1m"]
        if unknown:
            raise ValueError(f"cannot derive {unknown} from 1m bars; use {TIMEFRAMES[1:]}")
        return value
