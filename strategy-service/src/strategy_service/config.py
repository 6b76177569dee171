"""Settings of the strategy service (environment variables; see `algotrade.config`)."""

from __future__ import annotations

from pydantic import Field

from algotrade.config import SERVICE_PORTS, ServiceSettings


class Settings(ServiceSettings):
    port: int = Field(default=SERVICE_PORTS["strategy-service"], ge=1, le=65535)

    # Request bodies under /api/strategies: the engine caps a graph at 64 KiB of compact JSON;
    # a pretty-printed graph inside its envelope (name, description, ...) stays well below this.
    strategy_max_body_bytes: int = Field(default=256 * 1024, ge=1024)

    # Lists
    page_size_default: int = Field(default=20, ge=1, le=100)
    page_size_max: int = Field(default=100, ge=1, le=100)

    # Compiled-plan cache in Redis (keyed by plan id; a plan never changes under its id).
    plan_cache_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=1)
    plan_cache_timeout_seconds: float = Field(default=0.25, gt=0)
    # After a Redis error the cache is bypassed for this long, so an outage costs one failed
    # round trip per interval instead of one per request.
    plan_cache_retry_seconds: float = Field(default=5.0, ge=0)
