"""Settings of the forward-test service and its workers (environment variables; see
`algotrade.config`)."""

from __future__ import annotations

from pydantic import Field

from algotrade.config import SERVICE_PORTS, ServiceSettings


def _local(service: str) -> str:
    return f"http://127.0.0.1:{SERVICE_PORTS[service]}"


class Settings(ServiceSettings):
    port: int = Field(default=SERVICE_PORTS["forward-test-service"], ge=1, le=65535)

    # Other services, called with an internal token minted for the session's user
    # (the embedded stack sets STRATEGY_SERVICE_URL and MARKET_DATA_SERVICE_URL).
    strategy_service_url: str = _local("strategy-service")
    market_data_service_url: str = _local("market-data-service")
    http_timeout_seconds: float = Field(default=30.0, gt=0)
    internal_token_ttl_seconds: int = Field(default=300, ge=30, le=3600)

    # Sessions.
    max_running_sessions_per_user: int = Field(default=200, ge=1, le=1_000_000)
    """Running and paused sessions one user may hold; a new one beyond is a 409."""
    finished_checkpoint_ttl_seconds: int = Field(default=86_400, ge=1, le=30 * 86_400)
    """How long a finished session's Redis checkpoint outlives its copy in PostgreSQL."""
    access_check_seconds: float = Field(default=30.0, gt=0, le=3_600)
    """How often sessions on a shared series check the share still stands (`access`)."""
    warmup_max_bars: int = Field(default=10_000, ge=1, le=10_000)
    """The most warm-up bars read from market data (its window capacity bounds a read)."""

    # Workers (`forward-test-service worker`).
    worker_group_id: str = "forward-test-workers"
    worker_retry_attempts: int = Field(default=3, ge=1, le=20)
    # A bar meeting an outage (PostgreSQL or Redis unreachable) is retried this long without
    # counting as an attempt; its partition waits meanwhile (`algotrade.bus.RetryPolicy`).
    worker_outage_retry_seconds: float = Field(default=120.0, ge=0, le=3_600)
    worker_kafka_wait_seconds: float = Field(default=60.0, gt=0, le=3_600)
    worker_stall_seconds: float | None = Field(default=120.0, gt=0, le=3_600)
    """A worker holding no partition for this long exits so its supervisor starts a fresh
    member (see `algotrade.bus.ConsumerStalled`). None: never (more workers than partitions)."""
    worker_max_batch: int = Field(default=200, ge=1, le=10_000)
    checkpoint_seconds: float = Field(default=30.0, gt=0, le=3_600)
    """How often a worker copies its sessions' checkpoints (and equity points) to PostgreSQL;
    Redis holds them after every bar."""
    equity_event_seconds: float = Field(default=1.0, ge=0, le=3_600)
    """At most one ``session.equity`` event per session per this many seconds."""

    # Reading sessions.
    sessions_page_max: int = Field(default=200, ge=1)
    trades_page_max: int = Field(default=1_000, ge=1)
    equity_points_max: int = Field(default=10_000, ge=10)

    # Execution agents (`forward_test_service.agents`).
    max_agents_per_user: int = Field(default=100, ge=1, le=100_000)
    agent_lease_seconds: float = Field(default=30.0, gt=0, le=3_600)
    """A leased command not acknowledged in this time is delivered again (after a backoff)."""
    agent_max_attempts: int = Field(default=5, ge=1, le=100)
    """Deliveries of one command before it is ``failed``."""
    agent_backoff_base_seconds: float = Field(default=1.0, ge=0, le=3_600)
    agent_backoff_max_seconds: float = Field(default=60.0, ge=0, le=86_400)
    agent_poll_wait_max_seconds: float = Field(default=25.0, ge=0, le=25)
    agent_poll_recheck_seconds: float = Field(default=1.0, gt=0, le=60)
    """A waiting poll looks at its queue this often even without a wake-up."""
    agent_monitor_seconds: float = Field(default=1.0, gt=0, le=60)
    """How often silent agents are checked and the agent journal written to PostgreSQL."""
