"""`notification-service serve | migrate`."""

from __future__ import annotations

from typing import cast

from algotrade.service_cli import build_service_cli
from notification_service.config import Settings
from notification_service.main import NAME, create_app

app = build_service_cli(
    name=NAME,
    package="notification_service",
    schema="notify",
    settings_factory=Settings,
    app_factory=lambda settings: create_app(cast(Settings, settings)),
)

if __name__ == "__main__":
    app()
