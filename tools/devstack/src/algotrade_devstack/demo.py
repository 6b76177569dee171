"""``algotrade demo`` (``make demo``): the first user journey, narrated, in about a minute.

Uses the gateway at ``--gateway`` when one answers there (a ``make run`` in another terminal);
otherwise starts the embedded stack itself, runs the journey, and stops it again.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from algotrade_devstack.journey import Journey, JourneyResult
from algotrade_devstack.stack import launch

METRIC_ROWS = [
    ("total_return", "Total return", "{:.2%}"),
    ("cagr", "CAGR", "{:.2%}"),
    ("volatility", "Volatility (ann.)", "{:.2%}"),
    ("sharpe", "Sharpe", "{:.2f}"),
    ("sortino", "Sortino", "{:.2f}"),
    ("calmar", "Calmar", "{:.2f}"),
    ("max_drawdown", "Max drawdown", "{:.2%}"),
    ("win_rate", "Win rate", "{:.1%}"),
    ("profit_factor", "Profit factor", "{:.2f}"),
    ("trade_count", "Closed trades", "{:d}"),
    ("exposure", "Exposure", "{:.1%}"),
    ("benchmark_return", "Buy and hold", "{:.2%}"),
]


def gateway_answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def start_stack(console: Console, state_dir: Path, base_port: int) -> subprocess.Popen[bytes]:
    output = state_dir / "logs" / "demo-stack.out"
    console.print(f"no gateway on :{base_port}; starting the embedded stack (log: {output})")
    with console.status("waiting for all seven services to be ready…"):
        try:
            return launch(state_dir, base_port, output)
        except RuntimeError as exc:
            raise SystemExit(str(exc)) from None


def metrics_table(result: JourneyResult) -> Table:
    metrics = result.backtest["summary"]["metrics"]
    table = Table(title=f"SMA(10/30) on SPY daily, {result.backtest['bars']:,} bars")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, label, fmt in METRIC_ROWS:
        value = metrics.get(key)
        table.add_row(label, "—" if value is None else fmt.format(value))
    return table


def sweep_table(result: JourneyResult) -> Table:
    table = Table(title=f"Sweep: top of {result.sweep['combinations']} combinations by Sharpe")
    for column in ("rank", "fast", "slow", "sharpe", "total return"):
        table.add_column(column, justify="right")
    for row in result.ranked["results"]:
        m = row["metrics"]
        table.add_row(
            str(row["rank"]),
            f"{row['params']['fast']:g}",
            f"{row['params']['slow']:g}",
            f"{m['sharpe']:.2f}",
            f"{m['total_return']:.2%}",
        )
    return table


def run_demo(gateway: str, state_dir: Path, base_port: int, csv_path: Path) -> int:
    console = Console()
    proc = None if gateway_answers(gateway) else start_stack(console, state_dir, base_port)
    journey = Journey(gateway, say=lambda line: console.print(f"[cyan]→[/] {line}"))
    try:
        result = journey.run(csv_path)
    finally:
        journey.close()
        if proc is not None:
            proc.send_signal(signal.SIGINT)
            proc.wait(60)
    console.print(metrics_table(result))
    console.print(sweep_table(result))
    console.print(
        f"done in {result.timings['sweep']:.1f}s as {result.account.email}; "
        f"open {gateway}/docs for the API"
    )
    return 0
