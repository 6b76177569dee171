"""Settings of the notification service (environment variables; see `algotrade.config`).

Each message family starts in the mode its ``WS_FEATURE_<FAMILY>`` variable names (``rest``,
``shadow`` or ``live``); an admin changes it at run time (`notification_service.features`), and
the changed mode, kept in PostgreSQL, wins over the variable from then on.
"""

from __future__ import annotations

import socket

from pydantic import Field

from algotrade.config import SERVICE_PORTS, ServiceSettings
from notification_service.families import Mode


def _local(service: str) -> str:
    return f"http://127.0.0.1:{SERVICE_PORTS[service]}"


class Settings(ServiceSettings):
    port: int = Field(default=SERVICE_PORTS["notification-service"], ge=1, le=65535)

    instance_id: str = Field(
        default_factory=socket.gethostname, min_length=1, max_length=100, pattern=r"^[\w.\-]+$"
    )
    """Names this instance's consumer group (``notification.<instance>``): every instance reads
    every event, and a restarted instance goes on from where it stopped. Keep it stable per
    instance (a StatefulSet pod name, a compose service name)."""

    # The services whose resources a socket subscribes to; called for snapshots and access
    # checks with an internal token for the subscriber (the notification signer, read scopes).
    forward_test_service_url: str = _local("forward-test-service")
    backtesting_service_url: str = _local("backtesting-service")
    market_data_service_url: str = _local("market-data-service")
    http_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    internal_token_ttl_seconds: int = Field(default=300, ge=30, le=3600)

    # Families' starting modes (WS_FEATURE_<FAMILY>): shadow pushes, flagged, while clients
    # keep polling REST until an admin turns a family live.
    ws_feature_account: Mode = "shadow"
    ws_feature_positions: Mode = "shadow"
    ws_feature_orders: Mode = "shadow"
    ws_feature_intraday_bars: Mode = "shadow"
    ws_feature_market_status: Mode = "shadow"
    ws_feature_sessions: Mode = "shadow"
    ws_feature_backtests: Mode = "shadow"
    ws_feature_agents: Mode = "shadow"
    features_refresh_seconds: float = Field(default=5.0, gt=0, le=300)
    """How often an instance rereads the modes (a change is also announced at once)."""

    # Per-channel buffer for resume (Redis streams).
    channel_buffer: int = Field(default=1000, ge=10, le=100_000)
    """Messages kept per channel for ``resume_from``; older ones answer with a ``gap``."""
    channel_ttl_seconds: int = Field(default=24 * 3600, ge=60, le=30 * 24 * 3600)
    """A channel's buffer and sequence expire after this long without a message."""

    # Sockets.
    max_sockets: int = Field(default=20_000, ge=1, le=1_000_000)
    max_sockets_per_user: int = Field(default=100, ge=1, le=100_000)
    """Sockets one user may hold on one instance; one more is closed with 1008."""
    subscribes_per_second: float = Field(default=10.0, gt=0, le=10_000)
    subscribe_burst: int = Field(default=50, ge=1, le=100_000)
    """Subscribes one socket may send: a burst, then this many a second (each one reads its
    resource from the owning service); beyond, ``rate_limited`` on that channel."""
    max_subscriptions: int = Field(default=200, ge=1, le=10_000)
    """Channels one socket may hold at once."""
    max_message_bytes: int = Field(default=4096, ge=256, le=1_048_576)
    """Largest message a client may send (subscribe, unsubscribe, ping)."""
    socket_queue: int = Field(default=1000, ge=10, le=1_000_000)
    """Messages waiting for one socket before it counts as slow (market bars conflate)."""
    slow_grace_seconds: float = Field(default=5.0, gt=0, le=600)
    """A socket whose queue stays full this long is closed (code 4008, ``too slow``)."""
    idle_seconds: float = Field(default=300.0, gt=0, le=86_400)
    """A socket that subscribes to nothing and sends nothing this long is closed (4000)."""

    # Shadow parity.
    parity_delay_seconds: float = Field(default=1.0, ge=0, le=60)
    """How long after a shadow push its resource's REST snapshot is compared."""
    parity_max_pending: int = Field(default=1000, ge=1, le=100_000)
    """Comparisons waiting at once; beyond, new ones are counted as skipped."""
    stats_flush_seconds: float = Field(default=1.0, gt=0, le=60)
