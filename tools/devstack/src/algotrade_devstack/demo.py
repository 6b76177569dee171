"""``algotrade demo`` (``make demo``): the first user journey, narrated, in about a minute, then
a forward-test session on a max-speed replay of hourly SPY, watched as it runs, whose trades are
printed next to a backtest's and must equal them, and last an execution agent: the SDK's
reference agent, run in-process with the key of an agent the user registers, executes an open, a
modify and a close the user queues (each must be executed and the agent healthy, else the exit
status is 1).

Uses the gateway at ``--gateway`` when one answers there (a ``make run`` in another terminal);
otherwise starts the embedded stack itself, runs the journey, and stops it again.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table

from algotrade_devstack.journey import (
    AgentResult,
    ForwardResult,
    Journey,
    JourneyResult,
    moment,
    trade_key,
)
from algotrade_devstack.stack import launch

TRADE_ROWS_SHOWN = 12  # the first and last six; every trade is compared

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


class ForwardProgress:
    """The forward step as it runs: each replay's bars written and the session's bars applied
    with its equity, from the journey's polls (``GET /api/sessions/{id}``)."""

    def __init__(self, console: Console, bars: int) -> None:
        self.bars = bars
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[note]}"),
            console=console,
        )
        self.replays: dict[str, TaskID] = {}
        self.session: TaskID | None = None

    def __call__(self, replay: dict[str, Any], session: dict[str, Any] | None) -> None:
        if not self.progress.live.is_started:
            self.progress.start()
        task = self.replays.get(replay["id"])
        if task is None:
            description = f"replay → {replay.get('target_symbol') or 'target'}"
            task = self.progress.add_task(description, total=replay["bars_total"], note="")
            self.replays[replay["id"]] = task
        self.progress.update(
            task, total=replay["bars_total"], completed=replay["bars_emitted"], note=replay["state"]
        )
        if session is not None:
            if self.session is None:
                self.session = self.progress.add_task("session bars", total=self.bars, note="")
            equity = session.get("equity")
            note = "" if equity is None else f"equity {equity:,.2f}"
            self.progress.update(self.session, completed=session["bars_applied"], note=note)

    def stop(self) -> None:
        self.progress.stop()


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


def hour(text: str) -> str:
    return f"{moment(text):%y-%m-%d %H:%M}"


def forward_table(forward: ForwardResult) -> Table:
    """The session's closed trades next to the backtest's, row by row (narrow enough for 80
    columns: each row compares every field, the table shows the times and the pnl)."""
    table = Table(
        title=f"Forward session on {forward.target} vs backtest, {forward.bars:,} hourly bars",
        caption="=: same entry and exit time and price, side, quantity, fees, pnl, exit reason",
    )
    for column in ("#", "entry (UTC)", "exit (UTC)", "qty"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("session pnl", justify="right", style="cyan")
    table.add_column("backtest pnl", justify="right", style="magenta")
    table.add_column("=", justify="center")
    count = max(len(forward.session_trades), len(forward.backtest_trades))
    half = TRADE_ROWS_SHOWN // 2
    shown = [*range(count)]
    if count > TRADE_ROWS_SHOWN:
        shown = [*range(half), -1, *range(count - half, count)]
    for index in shown:
        if index < 0:
            table.add_row("…", f"{count - 2 * half} more", "", "", "…", "…", "…")
            continue
        got = forward.session_trades[index] if index < len(forward.session_trades) else None
        want = forward.backtest_trades[index] if index < len(forward.backtest_trades) else None
        either = got or want
        if either is None:  # not reached: index < count
            continue
        same = got is not None and want is not None and trade_key(got) == trade_key(want)
        table.add_row(
            str(index + 1),
            hour(either["entry_time"]),
            hour(either["exit_time"]),
            f"{either['quantity']:g}",
            "—" if got is None else f"{got['pnl']:,.2f}",
            "—" if want is None else f"{want['pnl']:,.2f}",
            "[green]✓[/]" if same else "[red]✗[/]",
        )
    return table


def forward_verdict(forward: ForwardResult) -> str:
    session_equity = forward.session["equity"]
    backtest_equity = forward.backtest["summary"]["metrics"]["final_equity"]
    figures = (
        f"{len(forward.session_trades)} session trades vs {len(forward.backtest_trades)} "
        f"backtest trades; final equity {session_equity:,.2f} vs {backtest_equity:,.2f}"
    )
    if forward.equal:
        return f"[bold green]equal[/]: {figures}"
    return f"[bold red]NOT equal[/]: {figures}"


def analytics_verdict(forward: ForwardResult, state_dir: Path) -> str:
    """The analytics service's verdict on the same pair, and where its tear sheet was saved."""
    if forward.comparison is None:
        return "[yellow]analytics: no comparison[/]"
    divergence = forward.comparison["divergence"]
    line = (
        f"analytics, backtest vs live: [bold]{divergence['verdict']}[/] "
        f"({divergence['trade_matches']} trades matched, {divergence['trade_mismatches']} not)"
    )
    if forward.tear_sheet is not None:
        sheet = state_dir / "reports" / "backtest-vs-live.html"
        sheet.parent.mkdir(parents=True, exist_ok=True)
        sheet.write_text(forward.tear_sheet, encoding="utf-8")
        line += f"; tear sheet: {sheet}"
    return line


def agent_table(result: AgentResult) -> Table:
    """Each command the user queued as it ended: state, delivery attempts, the fill, and the
    time from queueing it to seeing it executed (polled through the gateway)."""
    table = Table(
        title=f"Agent {result.registered['name']} ({result.registered['id']}): commands",
        caption="time: from the queueing request to the first poll that saw it ended",
    )
    for column in ("command", "state", "attempts", "ticket", "price", "time"):
        table.add_column(column, justify="right" if column != "command" else "left")
    for command in result.commands:
        ended = command.ended
        fill = ended.get("result") or {}
        what = ended["kind"]
        if ended["kind"] == "open":
            what = f"open {ended['symbol']} {ended['side']} {ended['volume']:g}"
        elif ended["kind"] == "modify":
            what = f"modify sl {ended['sl']:g}"
        style = "green" if ended["state"] == "executed" else "red"
        table.add_row(
            what,
            f"[{style}]{ended['state']}[/]",
            str(ended["attempts"]),
            str(fill.get("ticket", "—")),
            "—" if fill.get("price") is None else f"{fill['price']:g}",
            f"{command.seconds * 1000:,.0f} ms",
        )
    return table


def agent_verdict(result: AgentResult) -> str:
    health = result.agent.get("health") or {}
    components = ", ".join(f"{k} {v}" for k, v in (health.get("components") or {}).items())
    sync = result.sync
    synced = (
        "no trade sync"
        if sync is None
        else f"sync: {sync['matched']} matched, {sync['positions']} open, "
        f"{sync['conflicts']} conflicts"
    )
    figures = (
        f"state {result.state or '—'}, health {result.health if result.health is not None else '—'}"
        f" ({components or 'no components'}); {synced}"
    )
    if result.ok:
        return f"[bold green]agent ok[/]: {figures}"
    return f"[bold red]agent NOT ok[/]: {figures}"


def run_demo(
    gateway: str,
    state_dir: Path,
    base_port: int,
    csv_path: Path,
    *,
    forward_csv: Path | None = None,
    forward_bars: int = 2_000,
) -> int:
    console = Console()
    proc = None if gateway_answers(gateway) else start_stack(console, state_dir, base_port)
    progress = ForwardProgress(console, forward_bars)
    journey = Journey(gateway, say=lambda line: console.print(f"[cyan]→[/] {line}"), watch=progress)
    try:
        result = journey.run(csv_path, forward_csv=forward_csv, forward_bars=forward_bars)
    finally:
        progress.stop()
        journey.close()
        if proc is not None:
            proc.send_signal(signal.SIGINT)
            proc.wait(60)
    console.print(metrics_table(result))
    console.print(sweep_table(result))
    finished = result.timings["sweep"]
    if result.forward is not None:
        console.print(forward_table(result.forward))
        console.print(forward_verdict(result.forward))
        console.print(analytics_verdict(result.forward, state_dir))
        finished = result.timings["forward"]
    if result.agent is not None:
        console.print(agent_table(result.agent))
        console.print(agent_verdict(result.agent))
        finished = result.timings["agent"]
    console.print(
        f"done in {finished:.1f}s as {result.account.email}; open {gateway}/docs for the API"
    )
    forward_ok = result.forward is None or result.forward.equal
    agent_ok = result.agent is not None and result.agent.ok
    return 0 if forward_ok and agent_ok else 1
