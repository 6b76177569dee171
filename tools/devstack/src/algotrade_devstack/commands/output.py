"""Printing for the commands: rich tables for people, ``--json`` for machines, and one way
to report an API problem (its status, detail and every field at fault; exit code 1)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

console = Console()
JSON_OPTION = typer.Option(False, "--json", help="print JSON instead of a table")


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, default=str))


def number(value: Any, *, percent: bool = False) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if percent:
        return f"{value:.2%}"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.4g}" if abs(value) < 1_000 else f"{value:,.2f}"


PERCENT_METRICS = frozenset(
    {
        "total_return",
        "cagr",
        "volatility",
        "max_drawdown",
        "win_rate",
        "exposure",
        "benchmark_return",
    }
)


def metrics_table(metrics: dict[str, Any], title: str = "metrics") -> Table:
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in metrics.items():
        table.add_row(name, number(value, percent=name in PERCENT_METRICS))
    return table


def rows_table(
    rows: Sequence[dict[str, Any]], columns: Sequence[str], title: str | None = None
) -> Table:
    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(number(row.get(c)) for c in columns))
    return table


def show(value: Any, as_json: bool, render: Callable[[Any], Table | str]) -> None:
    if as_json:
        print_json(value)
    else:
        console.print(render(value))


@contextmanager
def problems() -> Iterator[None]:
    """Turn the SDK's errors into a message and exit code 1 (never a traceback)."""
    from algotrade_client import ApiError, TransportError

    try:
        yield
    except ApiError as exc:
        console.print(f"[red]error {exc.status}[/]: {exc.detail}")
        for error in exc.errors or []:
            where = ".".join(str(part) for part in error.get("loc", []))
            console.print(f"  {where or '-'}: {error.get('message') or error.get('msg') or error}")
        raise typer.Exit(1) from None
    except TransportError as exc:
        console.print(f"[red]cannot reach the gateway[/]: {exc}")
        raise typer.Exit(1) from None
