"""``algotrade``: the platform's own command line (the embedded stack and its helpers)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

# The user's commands import the SDK and the engine only inside their functions, so that
# `algotrade --help` stays quick.
from algotrade_devstack.commands import account, agents, backtests, sessions, strategies
from algotrade_devstack.commands import data as market

# Plain help (rich_markup_mode=None): rich's help panels cost ~200 ms of start-up per call.
app = typer.Typer(
    name="algotrade",
    help="AlgoTrade Beta2 command line",
    no_args_is_help=True,
    rich_markup_mode=None,
)
dev = typer.Typer(
    help="Run the platform on one machine without Docker",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(dev, name="dev")
notifications = typer.Typer(
    help="The notification service's message families (through the gateway)",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(notifications, name="notifications")
strategy = typer.Typer(
    help="Strategies: lint files offline, push, pull, list",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(strategy, name="strategy")
data = typer.Typer(
    help="Market data: import files of bars, list symbols",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(data, name="data")
backtest = typer.Typer(
    help="Backtests and sweeps, with progress", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(backtest, name="backtest")
session = typer.Typer(
    help="Forward sessions: start, list, watch live, stop",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(session, name="session")
agent = typer.Typer(
    help="The reference execution agent", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(agent, name="agent")
migrate = typer.Typer(
    help="Move another system's data into the platform", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(migrate, name="migrate")


app.command("login")(account.login)
app.command("whoami")(account.whoami)
app.command("logout")(account.logout)
strategy.command("push")(strategies.push)
strategy.command("pull")(strategies.pull)
strategy.command("list")(strategies.list_strategies)
strategy.command("templates")(strategies.templates)
data.command("import")(market.import_file)
data.command("ls")(market.list_symbols)
backtest.command("run")(backtests.run)
backtest.command("sweep")(backtests.sweep)
session.command("start")(sessions.start)
session.command("ls")(sessions.list_sessions)
session.command("watch")(sessions.watch)
session.command("terminal")(sessions.terminal)
session.command("stop")(sessions.stop)
agent.command("run")(agents.run)
GATEWAY_OPTION = typer.Option("http://127.0.0.1:8000", envvar="ALGOTRADE_URL", help="the gateway")
TOKEN_OPTION = typer.Option(
    ..., envvar="ALGOTRADE_TOKEN", help="an access token or API key", show_default=False
)


@strategy.command("lint")
def strategy_lint(
    files: list[Path] = typer.Argument(..., help="graph files, JSON or YAML", show_default=False),
    as_json: bool = typer.Option(False, "--json", help="print the problems as JSON"),
) -> None:
    """Validate graph files offline, as the strategy service would: every problem with its
    node and port; exit code 1 when any file has one."""
    from algotrade_devstack.lint import lint

    problems = lint(files)
    if as_json:
        typer.echo(json.dumps([p.as_dict() for p in problems], indent=2))
    elif problems:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"{len(problems)} problem(s)")
        for column in ("file", "node", "port", "code", "message"):
            table.add_column(column, overflow="fold")
        for p in problems:
            table.add_row(p.path, p.node or "", p.port or "", p.code, p.message)
        Console().print(table)
    else:
        typer.echo(f"{len(files)} file(s): no problems")
    raise typer.Exit(1 if problems else 0)


@dev.command("up")
def dev_up(
    state_dir: Path = typer.Option(Path(".algotrade"), help="where data and logs live"),
    base_port: int = typer.Option(
        8000, envvar="ALGOTRADE_BASE_PORT", help="gateway port; services use the next six"
    ),
    timeout: float = typer.Option(90.0, help="seconds to wait for every service to be ready"),
    workers: int = typer.Option(
        1, min=1, help="backtest worker processes, all in one consumer group (1 on the mock)"
    ),
    forward_workers: int = typer.Option(
        1, min=1, help="forward-test worker processes, one consumer group on market.bars.v1"
    ),
    cache_dir: Path = typer.Option(
        Path(".algotrade"), help="where downloaded tools (the Kafka jars) are kept"
    ),
) -> None:
    """Start infrastructure, all seven services, the backtest and the forward-test workers,
    restarting any that dies; Ctrl-C stops everything."""
    from algotrade_devstack.stack import up

    raise typer.Exit(
        up(
            state_dir.resolve(),
            base_port,
            timeout,
            workers=workers,
            forward_workers=forward_workers,
            cache_dir=cache_dir.resolve(),
        )
    )


@dev.command("status")
def dev_status(
    state_dir: Path = typer.Option(Path(".algotrade"), help="the state dir of the stack"),
) -> None:
    """Show the running stack's processes and infrastructure; exit 1 when none is running."""
    from algotrade_devstack.stack import show_status

    raise typer.Exit(show_status(state_dir.resolve()))


@app.command("demo")
def demo(
    gateway: str = typer.Option("", help="gateway URL (default: http://127.0.0.1:<base-port>)"),
    base_port: int = typer.Option(8000, envvar="ALGOTRADE_BASE_PORT"),
    state_dir: Path = typer.Option(Path(".algotrade"), help="state of a stack the demo starts"),
    data: Path = typer.Option(Path("data/spy-1d.csv"), help="the CSV of daily bars to import"),
    forward_data: Path = typer.Option(
        Path("data/spy-1h.csv"), help="the CSV of hourly bars to replay into a forward session"
    ),
    forward_bars: int = typer.Option(2_000, min=100, help="replay this many of its last bars"),
) -> None:
    """The first user journey through the gateway, narrated, ending with the metrics, then a
    forward session on a replay whose trades must equal a backtest's (else exit status 1)."""
    from algotrade_devstack.demo import run_demo

    url = gateway or f"http://127.0.0.1:{base_port}"
    code = run_demo(
        url,
        state_dir.resolve(),
        base_port,
        data.resolve(),
        forward_csv=forward_data.resolve(),
        forward_bars=forward_bars,
    )
    raise typer.Exit(code)


@app.command("keys")
def keys_env() -> None:
    """Print fresh keys for a deployment as environment variables (docker compose's ``.env``):
    the gateway's access-token secret, each signer's Ed25519 key and every public key."""
    from algotrade.keys import InstallationKeys

    values = InstallationKeys.generate().deployment_env()
    for name, value in values.items():
        # One line each: PEM newlines as a literal \n (the settings accept that form).
        typer.echo(f"{name}='{value.strip().replace(chr(10), chr(92) + 'n')}'")


@dev.command("kafka")
def dev_kafka() -> None:
    """Host librdkafka's mock cluster and print its bootstrap address."""
    from algotrade_devstack.kafka_mock import main

    main()


@notifications.command("status")
def notifications_status(gateway: str = GATEWAY_OPTION, token: str = TOKEN_OPTION) -> None:
    """Per family: mode, messages pushed, subscribers, parity and the last message's age."""
    from algotrade_devstack.notifications import CommandFailed, print_status

    try:
        print_status(gateway.rstrip("/"), token)
    except CommandFailed as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None


@notifications.command("set")
def notifications_set(
    family: str = typer.Argument(..., help="account, positions, orders, intraday_bars, ..."),
    mode: str = typer.Argument(..., help="rest, shadow or live"),
    reason: str = typer.Option(None, help="kept in the audit trail"),
    gateway: str = GATEWAY_OPTION,
    token: str = TOKEN_OPTION,
) -> None:
    """Switch a family's mode (the notifications-admin role); rollback is the same command."""
    from algotrade_devstack.notifications import CommandFailed, set_mode

    try:
        change = set_mode(gateway.rstrip("/"), token, family, mode, reason)
    except CommandFailed as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{change['family']}: {change['previous']} -> {change['mode']}")


@migrate.command("beta1")
def migrate_beta1(
    source: Path = typer.Option(..., help="Beta1's SQLite database (strategies.db)"),
    dry_run: bool = typer.Option(False, help="write nothing; print the full report"),
    verify: bool = typer.Option(False, help="recompute every figure from the target"),
    report: Path | None = typer.Option(None, help="write the report as JSON to this file"),
    state_dir: Path = typer.Option(
        Path(".algotrade"), help="an embedded stack's state dir (its infrastructure URLs)"
    ),
    batch_size: int = typer.Option(100, min=1, max=10_000, help="rows per transaction"),
) -> None:
    """Users, strategies, forward-test sessions and backtest results from Beta1, with an
    integrity report; idempotent (a second run changes nothing) and resumable. Exits 1 when
    anything would be lost without a reason."""
    from algotrade_devstack.commands.migrate import beta1

    raise typer.Exit(
        beta1(
            source,
            dry_run=dry_run,
            verify=verify,
            report_path=report,
            state_dir=state_dir.resolve(),
            batch_size=batch_size,
        )
    )


if __name__ == "__main__":
    app()
