"""`analytics-service serve | migrate`."""

from __future__ import annotations

from typing import cast

from algotrade.service_cli import build_service_cli
from analytics_service.config import Settings
from analytics_service.main import NAME, create_app

app = build_service_cli(
    name=NAME,
    package="analytics_service",
    schema="analytics",
    settings_factory=Settings,
    app_factory=lambda settings: create_app(cast(Settings, settings)),
)

if __name__ == "__main__":
    app()
