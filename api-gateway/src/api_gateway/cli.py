"""`api-gateway serve | migrate`."""

from __future__ import annotations

from typing import cast

from algotrade.service_cli import build_service_cli
from api_gateway.config import Settings
from api_gateway.main import NAME, create_app

app = build_service_cli(
    name=NAME,
    package="api_gateway",
    schema="gateway",
    settings_factory=Settings,
    app_factory=lambda settings: create_app(cast(Settings, settings)),
)

if __name__ == "__main__":
    app()
