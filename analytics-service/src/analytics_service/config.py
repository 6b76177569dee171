"""Settings of the analytics service (environment variables; see `algotrade.config`)."""

from __future__ import annotations

from pydantic import Field

from algotrade.config import SERVICE_PORTS, ServiceSettings


class Settings(ServiceSettings):
    port: int = Field(default=SERVICE_PORTS["analytics-service"], ge=1, le=65535)
