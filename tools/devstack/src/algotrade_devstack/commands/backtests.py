"""``algotrade backtest run | sweep``: a progress bar while it runs, then the figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from algotrade_devstack.commands import context
from algotrade_devstack.commands.output import (
    JSON_OPTION,
    console,
    metrics_table,
    print_json,
    problems,
    rows_table,
)
from algotrade_devstack.lint import read_graph

STRATEGY_ARGUMENT = typer.Argument(
    ..., help="a graph file (JSON/YAML) or a stored strategy's id", show_default=False
)
SYMBOL = typer.Option(..., help="symbol of the bars")
TIMEFRAME = typer.Option(..., help="1m, 5m, 15m, 1h, 4h, 1d, ...")
START = typer.Option(..., help="first bar's open time (ISO-8601, UTC)")
END = typer.Option(..., help="end of the range (exclusive)")
CAPITAL = typer.Option(100_000.0, help="initial capital")
FEE = typer.Option(0.0, help="fee in basis points of each fill")
SLIPPAGE = typer.Option(0.0, help="slippage in basis points")
VERSION = typer.Option(None, help="a stored strategy's version (default: its current one)")


def _body(
    client: Any,
    strategy: str,
    version: int | None,
    symbol: str,
    timeframe: str,
    start: str,
    end: str,
    capital: float,
    fee_bps: float,
    slippage_bps: float,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "symbol": symbol,
        "timeframe": timeframe,
        "start": start,
        "end": end,
        "config": {"initial_capital": capital, "fee_bps": fee_bps, "slippage_bps": slippage_bps},
    }
    path = Path(strategy)
    if path.exists():
        body["graph"] = read_graph(path)
    else:
        body["strategy_id"] = strategy
        body["version"] = version or client.strategies.get(strategy)["current_version"]
    return body


def _wait(client: Any, job: dict[str, Any], quiet: bool) -> dict[str, Any]:
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=console,
        disable=quiet,
    ) as bar:
        task = bar.add_task(f"{job['kind']} {job['id']}", total=1.0)

        def progress(status: dict[str, Any]) -> None:
            bar.update(
                task,
                completed=float(status.get("progress") or 0.0),
                description=f"{status['kind']} {status['id']}: {status['status']}",
            )

        done: dict[str, Any] = client.backtests.wait(job["id"], progress=progress)
    return done


def run(
    strategy: str = STRATEGY_ARGUMENT,
    symbol: str = SYMBOL,
    timeframe: str = TIMEFRAME,
    start: str = START,
    end: str = END,
    version: int = VERSION,
    capital: float = CAPITAL,
    fee_bps: float = FEE,
    slippage_bps: float = SLIPPAGE,
    as_json: bool = JSON_OPTION,
) -> None:
    """Run a backtest and wait for it; its metrics at the end (exit 1 if it failed)."""
    with problems(), context.client() as client:
        body = _body(
            client, strategy, version, symbol, timeframe, start, end, capital, fee_bps, slippage_bps
        )
        done = _wait(client, client.backtests.submit(body), as_json)
    if as_json:
        print_json(done)
    elif done["status"] == "completed":
        console.print(metrics_table(done["summary"]["metrics"], title=f"backtest {done['id']}"))
    else:
        console.print(f"[red]{done['status']}[/]: {done.get('error')}")
    if done["status"] != "completed":
        raise typer.Exit(1)


def parse_grid(values: list[str]) -> dict[str, Any]:
    """``name=min:max:step`` (a range) or ``name=a,b,c`` (values) per tunable."""
    grid: dict[str, Any] = {}
    for item in values:
        name, _, spec = item.partition("=")
        if not name or not spec:
            raise typer.BadParameter(f"{item!r}: use name=min:max:step or name=a,b,c")
        try:
            if ":" in spec:
                low, high, step = (float(x) for x in spec.split(":"))
                grid[name] = {"min": low, "max": high, "step": step}
            else:
                grid[name] = [float(x) for x in spec.split(",")]
        except ValueError:
            raise typer.BadParameter(f"{item!r}: the bounds must be numbers") from None
    return grid


def sweep(
    strategy: str = STRATEGY_ARGUMENT,
    symbol: str = SYMBOL,
    timeframe: str = TIMEFRAME,
    start: str = START,
    end: str = END,
    grid: list[str] = typer.Option([], help="name=min:max:step or name=a,b,c (repeatable)"),
    metric: str = typer.Option("sharpe", help="what to rank by"),
    top: int = typer.Option(10, min=1, max=1_000, help="rows of the ranking shown"),
    version: int = VERSION,
    capital: float = CAPITAL,
    fee_bps: float = FEE,
    slippage_bps: float = SLIPPAGE,
    as_json: bool = JSON_OPTION,
) -> None:
    """Sweep the strategy's tunables over a grid; the ranking at the end."""
    with problems(), context.client() as client:
        body = _body(
            client, strategy, version, symbol, timeframe, start, end, capital, fee_bps, slippage_bps
        )
        body["search"] = {"method": "grid", "parameters": parse_grid(grid)}
        body["metric"] = metric
        done = _wait(client, client.backtests.sweep(body), as_json)
        ranked = (
            client.backtests.sweep_results(done["id"], limit=top)
            if done["status"] == "completed"
            else {"results": []}
        )
    if as_json:
        print_json({"job": done, "results": ranked["results"]})
    else:
        rows = [
            {"rank": i + 1, **row["params"], **{metric: row["metrics"].get(metric)}}
            for i, row in enumerate(ranked["results"])
        ]
        columns = ["rank", *(rows[0].keys() - {"rank", metric} if rows else []), metric]
        console.print(rows_table(rows, columns, title=f"sweep {done['id']} by {metric}"))
    if done["status"] != "completed":
        raise typer.Exit(1)
