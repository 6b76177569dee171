"""The command line every service shares: ``<service> serve`` and ``<service> migrate``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import typer
from fastapi import FastAPI

from algotrade.config import ServiceSettings
from algotrade.logs import configure_logging
from algotrade.migrations import upgrade
from algotrade.server import HeadLimitedHttpToolsProtocol
from algotrade.server import serve as serve_app


def build_service_cli(
    *,
    name: str,
    package: str,
    schema: str | None,
    settings_factory: Callable[[], ServiceSettings],
    app_factory: Callable[[ServiceSettings], FastAPI],
    protocol: Callable[[FastAPI], type[HeadLimitedHttpToolsProtocol]] | None = None,
) -> typer.Typer:
    """``protocol``: the HTTP protocol to serve an app with, made for that app (default: every
    service's own, `HeadLimitedHttpToolsProtocol`)."""
    cli = typer.Typer(name=name, help=f"AlgoTrade {name}", no_args_is_help=True)

    @cli.command()
    def serve(
        host: str | None = typer.Option(None, help="bind address (default: HOST setting)"),
        port: int | None = typer.Option(None, help="port (default: PORT setting)"),
        migrate_first: bool = typer.Option(False, "--migrate", help="apply migrations first"),
    ) -> None:
        """Run the HTTP service (uvicorn with uvloop and httptools, capped request heads)."""
        settings = settings_factory()
        configure_logging(name, settings.log_level)
        if migrate_first and schema is not None:
            asyncio.run(upgrade(settings.database_url.get_secret_value(), package, schema))
        app = app_factory(settings)
        http = protocol(app) if protocol is not None else HeadLimitedHttpToolsProtocol
        serve_app(app, settings, host=host, port=port, http=http)

    @cli.command()
    def migrate(revision: str = typer.Argument("head")) -> None:
        """Apply this service's database migrations."""
        settings = settings_factory()
        configure_logging(name, settings.log_level)
        if schema is None:
            typer.echo(f"{name} has no database schema")
            return
        asyncio.run(upgrade(settings.database_url.get_secret_value(), package, schema, revision))
        typer.echo(f"{name}: schema {schema} at {revision}")

    return cli
