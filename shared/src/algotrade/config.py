"""Settings base every service's Settings extends (pydantic-settings, environment variables).

Environment names are flat and shared by every service (``DATABASE_URL``, ``REDIS_URL``,
``KAFKA_BOOTSTRAP``, ``S3_ENDPOINT``, ``INTERNAL_JWT_PUBLIC_KEYS``...), so one ``.env`` or one
compose block configures the whole platform.

Keys have no defaults, in any environment: a process that needs a key it was not given refuses
to start (`algotrade.auth` raises `ConfigurationError` when the lifespan builds its signer or
verifier). Settings themselves build without keys, so that tools reading a service's OpenAPI or
running its migrations need none. ``make run`` generates keys per installation
(`algotrade.keys`); tests generate their own.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from algotrade.errors import ConfigurationError

PLACEHOLDER_SECRET = "change-me-local-only"  # noqa: S105 - refused everywhere, never a key
MIN_SECRET_LENGTH = 32
LOCAL_S3_SECRET = "testing"  # noqa: S105 - moto's default, refused outside local mode

SERVICE_PORTS: dict[str, int] = {
    "api-gateway": 8000,
    "strategy-service": 8001,
    "market-data-service": 8002,
    "backtesting-service": 8003,
    "forward-test-service": 8004,
    "notification-service": 8005,
    "analytics-service": 8006,
}


class ServiceSettings(BaseSettings):
    """Connection URLs, security and ports common to all services."""

    # An empty variable (``S3_ENDPOINT=``, as compose files write it) means "not set".
    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", frozen=True, env_ignore_empty=True
    )

    environment: Literal["local", "test", "staging", "production"] = "local"
    log_level: str = "INFO"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)

    database_url: SecretStr = SecretStr("postgresql+asyncpg://postgres@127.0.0.1:5432/algotrade")
    db_pool_size: int = Field(default=10, ge=1, le=200)
    redis_url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    redis_max_connections: int = Field(default=100, ge=1, le=10_000)
    """Pooled connections per process; beyond, a command waits for one."""
    redis_pool_wait_seconds: float = Field(default=5.0, gt=0, le=300)
    """How long a command waits for a free pooled connection (then the request is a 503)."""
    redis_timeout_seconds: float = Field(default=5.0, gt=0, le=300)
    """How long a command waits for Redis's answer before Redis counts as unavailable."""
    redis_prefix: str = ""
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_topic_prefix: str = ""
    s3_endpoint: str | None = None
    s3_region: str = "us-east-1"
    s3_bucket: str = "algotrade"
    s3_access_key: SecretStr = SecretStr("testing")
    s3_secret_key: SecretStr = SecretStr(LOCAL_S3_SECRET)

    # User access tokens: HMAC, issued and verified by the gateway alone (no other process
    # gets JWT_SECRET). Previous secrets still verify, by kid, until removed.
    jwt_secret: SecretStr | None = None
    jwt_key_id: str = "k1"
    jwt_previous_secrets: dict[str, SecretStr] = Field(default_factory=dict)
    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    jwt_issuer: str = "algotrade-gateway"
    jwt_audience: str = "algotrade"

    # Internal tokens (gateway -> services, backtesting -> market data / strategies): EdDSA.
    # A signer holds its private key and kid; every service verifies with the public keys
    # (JSON {kid: PEM}: the current keys and previous ones still honoured). A kid listed in
    # INTERNAL_JWT_KEY_SCOPES signs tokens only for those scopes (the backtesting key).
    internal_jwt_private_key: SecretStr | None = None
    internal_jwt_key_id: str | None = None
    internal_jwt_public_keys: dict[str, str] = Field(default_factory=dict)
    internal_jwt_key_scopes: dict[str, list[str]] = Field(default_factory=dict)
    internal_token_audience: str = "algotrade-internal"  # noqa: S105 - an audience name

    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    # Request line plus headers of one request, enforced by the server before the app runs
    # (431). Well above any header the platform sends, well below what a flood would need.
    max_request_head_bytes: int = Field(default=65_536, ge=8192)
    outbox_poll_seconds: float = Field(default=0.2, gt=0)
    # WebSockets (the gateway's /ws and the notification service behind it).
    ws_ping_seconds: float = Field(default=20.0, gt=0, le=600)
    """Protocol pings to every WebSocket peer; one that does not answer as long is dropped."""
    ws_max_message_bytes: int = Field(default=65_536, ge=1024, le=16_777_216)
    """Largest WebSocket message a peer may send (a larger one closes the socket, 1009)."""

    @property
    def is_local(self) -> bool:
        return self.environment in ("local", "test")

    @model_validator(mode="after")
    def _refuse_weak_secrets(self) -> ServiceSettings:
        # In every environment: a known or short secret is as good as none, and "local" is
        # what an unconfigured deployment would say too.
        secrets = {"JWT_SECRET": self.jwt_secret} if self.jwt_secret is not None else {}
        secrets.update(
            {f"JWT_PREVIOUS_SECRETS[{k}]": v for k, v in self.jwt_previous_secrets.items()}
        )
        for name, secret in secrets.items():
            value = secret.get_secret_value()
            if value == PLACEHOLDER_SECRET:
                raise ConfigurationError(
                    f"{name} is the old published placeholder; generate a secret "
                    "(openssl rand -hex 32)"
                )
            if len(value) < MIN_SECRET_LENGTH:
                raise ConfigurationError(
                    f"{name} must be at least {MIN_SECRET_LENGTH} characters (openssl rand -hex 32)"
                )
        return self
