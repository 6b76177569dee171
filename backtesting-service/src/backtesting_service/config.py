"""Settings of the backtesting service and its workers (environment variables; see
`algotrade.config`)."""

from __future__ import annotations

from pydantic import Field

from algotrade.bars import MAX_RANGE_BARS
from algotrade.config import SERVICE_PORTS, ServiceSettings


def _local(service: str) -> str:
    return f"http://127.0.0.1:{SERVICE_PORTS[service]}"


class Settings(ServiceSettings):
    port: int = Field(default=SERVICE_PORTS["backtesting-service"], ge=1, le=65535)

    # Other services, called with an internal token minted for the job's user
    # (the embedded stack sets STRATEGY_SERVICE_URL and MARKET_DATA_SERVICE_URL).
    strategy_service_url: str = _local("strategy-service")
    market_data_service_url: str = _local("market-data-service")
    http_timeout_seconds: float = Field(default=30.0, gt=0)
    internal_token_ttl_seconds: int = Field(default=300, ge=30, le=3600)
    bars_page_size: int = Field(default=10_000, ge=100, le=100_000)
    # The market data service answers a range in one piece up to the same bound.
    max_bars: int = Field(default=MAX_RANGE_BARS, ge=1_000)

    # Sweeps: combinations per Kafka message (a chunk is the unit workers share).
    sweep_chunk_size: int = Field(default=100, ge=1, le=10_000)

    # Workers (`backtesting-service worker`).
    worker_processes: int | None = Field(
        default=None, ge=1, le=256, description="process pool size; default: CPU count"
    )
    worker_group_id: str = "backtesting-workers"
    worker_retry_attempts: int = Field(default=3, ge=1, le=20)
    # A job meeting an outage (the database, market data or S3 unreachable) is retried this
    # long without using up its attempts: a dependency's restart must not fail the job.
    worker_outage_retry_seconds: float = Field(default=120.0, ge=0, le=3_600)
    worker_kafka_wait_seconds: float = Field(default=60.0, gt=0, le=3_600)
    """How long a starting worker waits for Kafka before it exits (its supervisor restarts it)."""
    worker_stall_seconds: float | None = Field(default=120.0, gt=0, le=3_600)
    """A worker holding no partition for this long exits so its supervisor starts a fresh
    member (a member can stay out of its group after a broker restart). None: never; set it
    so when running more workers than ``backtest.jobs.v1`` has partitions."""
    # A job runs between two polls; Kafka drops a member that does not poll for this long.
    worker_max_poll_interval_ms: int = Field(default=1_800_000, ge=60_000)

    # Reading results.
    jobs_page_max: int = Field(default=200, ge=1)
    trades_page_max: int = Field(default=1_000, ge=1)
    equity_points_max: int = Field(default=10_000, ge=10)
