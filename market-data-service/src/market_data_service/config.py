"""Settings of the market data service (environment variables; see `algotrade.config`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from algotrade.bars import MAX_RANGE_BARS, TIMEFRAMES, normalize_symbol
from algotrade.config import SERVICE_PORTS, ServiceSettings
from market_data_service.calendars import ALWAYS_OPEN, canonical_calendar


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

    # Tick push: ticks aggregated into 1m bars (market_data_service.ticks). A 10,000-tick push
    # with 64-character ids is ~1.3 MB of compact JSON.
    ticks_max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    # A minute with no later tick closes once the wall clock is this far past its end.
    tick_close_grace_seconds: float = Field(default=2.0, ge=0, le=3600)
    tick_close_interval_seconds: float = Field(default=0.5, gt=0, le=60)
    # A tick this far ahead of the server's clock is refused: it would open a future minute
    # and make every real tick after it late.
    tick_max_future_seconds: float = Field(default=300.0, ge=0, le=86_400)

    # History reads
    history_page_max: int = Field(default=10_000, ge=1)
    # One Arrow answer holds a whole range up to this many bars (a backtest's bound).
    history_range_max_bars: int = Field(default=MAX_RANGE_BARS, ge=1)
    gap_report_max_bars: int = Field(default=2_000_000, ge=1)
    resample_max_source_bars: int = Field(default=5_000_000, ge=1)

    # Trading calendars (gap reports): symbol -> calendar name, e.g. SYMBOL_CALENDARS=
    # '{"SPY": "xnys", "VOD.L": "xlon", "ES": "cmes", "EUR-USD": "24/5"}'; others get the default.
    symbol_calendars: dict[str, str] = Field(default_factory=dict)
    default_calendar: str = ALWAYS_OPEN

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

    @field_validator("symbol_calendars")
    @classmethod
    def _known_calendars(cls, value: dict[str, str]) -> dict[str, str]:
        return {normalize_symbol(s): canonical_calendar(c) for s, c in value.items()}

    @field_validator("default_calendar")
    @classmethod
    def _known_default_calendar(cls, value: str) -> str:
        return canonical_calendar(value)

    def calendar_of(self, symbol: str) -> str:
        """The trading calendar ``symbol`` is configured with (the default otherwise)."""
        return self.symbol_calendars.get(symbol, self.default_calendar)

    @field_validator("coinbase_derive_timeframes")
    @classmethod
    def _known_timeframes(cls, value: list[str]) -> list[str]:
        unknown = [tf for tf in value if tf not in TIMEFRAMES or tf == "1m"]
        if unknown:
            raise ValueError(f"cannot derive {unknown} from 1m bars; use {TIMEFRAMES[1:]}")
        return value
