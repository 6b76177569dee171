"""`api-gateway serve | migrate`."""

from __future__ import annotations

from typing import cast

from algotrade.service_cli import build_service_cli
from api_gateway.config import Settings
from api_gateway.lane_protocol import lane_protocol
from api_gateway.main import NAME, create_app
from api_gateway.proxy_lane import GatewayApp

app = build_service_cli(
    name=NAME,
    package="api_gateway",
    schema="gateway",
    settings_factory=Settings,
    app_factory=lambda settings: create_app(cast(Settings, settings)),
    protocol=lambda app: lane_protocol(cast(GatewayApp, app)),
)

if __name__ == "__main__":
    app()
