"""Settings of the analytics service (environment variables; see `algotrade.config`)."""

from __future__ import annotations

from pydantic import Field

from algotrade.config import SERVICE_PORTS, ServiceSettings


def _local(service: str) -> str:
    return f"http://127.0.0.1:{SERVICE_PORTS[service]}"


class Settings(ServiceSettings):
    port: int = Field(default=SERVICE_PORTS["analytics-service"], ge=1, le=65535)

    # Benchmark bars (beta, the benchmark line) come from the market data service, read with
    # an internal token for the report's user (`algotrade.keys.ANALYTICS_SCOPES`).
    market_data_service_url: str = _local("market-data-service")
    http_timeout_seconds: float = Field(default=30.0, gt=0)
    internal_token_ttl_seconds: int = Field(default=300, ge=30, le=3600)

    consumer_group_id: str = "analytics"
    """The consumer group of ``session.events.v1`` and ``backtest.events.v1``."""

    # Bounds of one analysis (a portfolio loads every member's curve).
    portfolio_max_members: int = Field(default=100, ge=1, le=1_000)
    portfolios_per_user: int = Field(default=200, ge=1, le=100_000)
    backtest_cache_entries: int = Field(default=64, ge=0, le=10_000)
    """Backtest curves kept in memory (they never change once written to S3)."""
