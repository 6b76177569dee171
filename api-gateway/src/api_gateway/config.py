"""Settings of the API gateway (environment variables; see `algotrade.config`).

Dict- and list-valued settings are read from the environment as JSON, e.g.
``RATE_LIMITS='{"read": {"limit": 100, "period_seconds": 1}}'`` or
``CORS_ORIGINS='["https://app.example.com"]'``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from algotrade.config import SERVICE_PORTS, ServiceSettings
from api_gateway.webapp import default_web_dist

RouteClass = Literal["auth", "read", "write", "backtest_submit"]


class RateLimitRule(BaseModel):
    """``limit`` requests per ``period_seconds`` (GCRA: a burst of ``limit``, then evenly spaced).

    ``fail_open`` says what happens while Redis cannot be reached: let requests through
    (availability first) or refuse them with 503 (protection first).
    """

    model_config = ConfigDict(frozen=True)

    limit: int = Field(ge=1)
    period_seconds: float = Field(gt=0)
    fail_open: bool


DEFAULT_RATE_LIMITS: dict[RouteClass, RateLimitRule] = {
    # Login and registration, per client address. Closed: guessing must not get easier
    # because Redis is down.
    "auth": RateLimitRule(limit=10, period_seconds=60, fail_open=False),
    "read": RateLimitRule(limit=1200, period_seconds=60, fail_open=True),
    "write": RateLimitRule(limit=300, period_seconds=60, fail_open=True),
    # Expensive: every submission can start thousands of backtests.
    "backtest_submit": RateLimitRule(limit=30, period_seconds=60, fail_open=False),
}


def _local(service: str) -> str:
    return f"http://127.0.0.1:{SERVICE_PORTS[service]}"


class Settings(ServiceSettings):
    port: int = Field(default=SERVICE_PORTS["api-gateway"], ge=1, le=65535)

    # Upstreams (the embedded stack sets STRATEGY_SERVICE_URL and friends).
    strategy_service_url: str = _local("strategy-service")
    market_data_service_url: str = _local("market-data-service")
    backtesting_service_url: str = _local("backtesting-service")
    forward_test_service_url: str = _local("forward-test-service")
    notification_service_url: str = _local("notification-service")
    analytics_service_url: str = _local("analytics-service")

    # Tokens.
    access_token_ttl_seconds: int = Field(default=900, ge=30, le=86_400)
    refresh_token_ttl_seconds: int = Field(default=30 * 86_400, ge=60)
    internal_token_ttl_seconds: int = Field(default=60, ge=5, le=3600)
    # An internal token is reused for this long per principal, so the gateway does not sign one
    # per request; services still see at least ttl - reuse seconds of validity.
    internal_token_reuse_seconds: int = Field(default=15, ge=0)
    # A verified API key is remembered this long per gateway process; a key revoked through
    # another gateway instance keeps working here for at most this long (0 disables the cache).
    api_key_cache_seconds: float = Field(default=5.0, ge=0)
    max_api_keys_per_user: int = Field(default=50, ge=1)
    # Longer Authorization or X-API-Key headers are refused with 431 before any parsing.
    max_credential_header_bytes: int = Field(default=8192, ge=1024, le=65_536)

    # Passwords (argon2id; RFC 9106's low-memory profile by default).
    password_hash_time_cost: int = Field(default=3, ge=1)
    password_hash_memory_kib: int = Field(default=65_536, ge=8)
    password_hash_parallelism: int = Field(default=4, ge=1)
    # Concurrent hashes per process: each one holds memory_kib of RAM while it runs.
    password_hash_concurrency: int = Field(default=4, ge=1)

    # Login throttling against password guessing (failed attempts per window).
    login_max_failures_per_account: int = Field(default=5, ge=1)
    login_max_failures_per_address: int = Field(default=20, ge=1)
    login_throttle_window_seconds: int = Field(default=900, ge=1)

    # Request rate limits per route class; missing classes take their defaults.
    rate_limits: dict[RouteClass, RateLimitRule] = Field(
        default_factory=lambda: dict(DEFAULT_RATE_LIMITS)
    )
    # Redis calls of the limiter give up after this long (then the class's fail policy applies),
    # and after a failure Redis is not tried again for `rate_limit_redis_retry_seconds`.
    rate_limit_redis_timeout_seconds: float = Field(default=0.5, gt=0)
    rate_limit_redis_retry_seconds: float = Field(default=1.0, ge=0)
    # A busy subject's requests are taken from Redis up to `rate_limit_max_lease` at a time (at
    # most 2% of its limit) and used within `rate_limit_lease_seconds`; 0 turns leases off.
    # Redis still counts every request: the instances together never admit more than a limit.
    rate_limit_lease_seconds: float = Field(default=0.05, ge=0, le=1)
    rate_limit_max_lease: int = Field(default=16, ge=1, le=1000)

    # Upstream HTTP.
    upstream_connect_timeout_seconds: float = Field(default=2.0, gt=0)
    upstream_timeout_seconds: float = Field(default=30.0, gt=0)
    # Longer read/write timeouts for path prefixes (longest prefix wins).
    route_timeouts: dict[str, float] = Field(
        default_factory=lambda: {
            "/api/market/imports": 300.0,
            "/api/backtests": 60.0,
            "/api/agents": 40.0,  # command long-polls wait up to 25 s
        }
    )
    upstream_max_connections: int = Field(default=200, ge=1)
    upstream_max_connections_by_service: dict[str, int] = Field(
        default_factory=lambda: {"forward-test-service": 2_000}
    )
    """Per-service pool sizes: each agent's waiting command long-poll holds one connection to
    the forward-test service, so its pool must exceed the agents one gateway serves."""
    upstream_max_keepalive: int = Field(default=50, ge=1)
    # Below uvicorn's 5 s keep-alive, so the gateway never reuses a connection the service closed.
    upstream_keepalive_seconds: float = Field(default=4.0, gt=0)
    upstream_connect_retries: int = Field(default=2, ge=0, le=5)
    breaker_failure_threshold: int = Field(default=5, ge=1)
    breaker_cooldown_seconds: float = Field(default=10.0, gt=0)
    # Failures must come from this many different callers to open a breaker: one user's
    # requests, whatever they are, never cut a service off from everyone else.
    breaker_min_callers: int = Field(default=2, ge=1, le=1000)
    # Larger request bodies for path prefixes (file imports); everything else: MAX_BODY_BYTES.
    proxy_body_limits: dict[str, int] = Field(
        default_factory=lambda: {"/api/market/imports": 512 * 1024 * 1024}
    )

    # WebSocket pass-through.
    websocket_auth_timeout_seconds: float = Field(default=5.0, gt=0)
    websocket_send_timeout_seconds: float = Field(default=10.0, gt=0, le=600)
    """A client that takes no message for this long is closed (4008, too slow), freeing the
    relay; the notification service applies its own, shorter, rule behind it."""

    # Merged OpenAPI.
    openapi_cache_seconds: float = Field(default=60.0, ge=0)
    openapi_fetch_timeout_seconds: float = Field(default=2.0, gt=0)

    # CORS for the web frontend.
    cors_origins: list[str] = Field(
        default_factory=lambda: ["http://localhost:5173", "http://127.0.0.1:5173"]
    )

    # The built web app, served at / (`api_gateway.webapp`).
    web_dist_dir: Path = Field(default_factory=default_web_dist)

    @field_validator("rate_limits")
    @classmethod
    def _fill_rate_limit_defaults(
        cls, value: dict[RouteClass, RateLimitRule]
    ) -> dict[RouteClass, RateLimitRule]:
        return {**DEFAULT_RATE_LIMITS, **value}

    def upstream_urls(self) -> dict[str, str]:
        """Base URL of each routed service, by service name."""
        return {
            "strategy-service": self.strategy_service_url,
            "market-data-service": self.market_data_service_url,
            "backtesting-service": self.backtesting_service_url,
            "forward-test-service": self.forward_test_service_url,
            "notification-service": self.notification_service_url,
            "analytics-service": self.analytics_service_url,
        }
