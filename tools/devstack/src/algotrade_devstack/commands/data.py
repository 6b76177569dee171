"""``algotrade data import | ls``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from algotrade_devstack.commands import context
from algotrade_devstack.commands.output import (
    JSON_OPTION,
    console,
    print_json,
    problems,
    rows_table,
    show,
)


def import_file(
    file: Path = typer.Argument(..., help="CSV or Parquet of bars", show_default=False),
    symbol: str = typer.Option(..., help="the symbol the bars are for"),
    timeframe: str = typer.Option(..., help="their timeframe (1m, 1h, 1d, ...)"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Upload a file of bars with a progress bar; the import's outcome at the end."""
    with (
        problems(),
        context.client() as client,
        Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed:,} rows"),
            TimeElapsedColumn(),
            console=console,
            disable=as_json,
        ) as bar,
    ):
        task = bar.add_task(f"import {file.name}", total=None)

        def progress(status: dict[str, Any]) -> None:
            rows = status.get("rows_read") or status.get("rows_written") or 0
            bar.update(task, completed=rows, description=f"import {file.name}: {status['state']}")

        done = client.market.import_file(file, symbol, timeframe, progress=progress)
    if as_json:
        print_json(done)
    else:
        keys = ("state", "rows_read", "rows_written", "rows_rejected", "first_ts", "last_ts")
        console.print(rows_table([done], [k for k in keys if k in done], title="import"))
    if done.get("state") == "failed":
        raise typer.Exit(1)


def list_symbols(as_json: bool = JSON_OPTION) -> None:
    """Symbols you may read, with their timeframes and coverage."""
    with problems(), context.client() as client:
        rows = client.market.symbols()
    columns = ("symbol", "owner", "timeframes")
    show(rows, as_json, lambda r: rows_table(r, columns))
