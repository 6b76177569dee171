"""Reports by kind: load what a report needs, analyse it off the event loop, and thin its
chart series for JSON readers (the figures are always computed on every bar)."""

from __future__ import annotations

import asyncio
from typing import Any, Final

import numpy as np

from algotrade.downsample import lttb_indices
from algotrade.errors import DependencyUnavailable, NotFound, ValidationFailed
from analytics_service.analysis import Benchmark, Options, analyse_portfolio, analyse_run
from analytics_service.divergence import compare
from analytics_service.models import BACKTEST, SESSION
from analytics_service.runs import RunData
from analytics_service.services import Analytics

NO_BENCHMARK: Final = "none"
SERIES: Final = ("equity", "benchmark", "drawdown", "rolling_sharpe", "rolling_volatility")


async def benchmark_for(
    services: Analytics, user_id: str, runs: list[RunData], wanted: str | None
) -> tuple[Benchmark | None, str | None]:
    """The benchmark a report compares with, and a note when the default could not be had.

    ``wanted`` None: the runs' own symbol when they share one (buy and hold of what they
    trade); ``none``: no benchmark; else that symbol, which must exist for the user (422)."""
    if wanted is not None and wanted.lower() == NO_BENCHMARK:
        return None, None
    runs = [r for r in runs if r.ts.shape[0] > 0]
    if not runs:
        return None, None
    symbols = {r.symbol for r in runs}
    symbol = wanted or (symbols.pop() if len(symbols) == 1 else None)
    if symbol is None:
        return None, "the members trade different symbols: choose a benchmark"
    timeframe = min(runs, key=lambda r: -r.periods).timeframe
    start = min(int(r.ts[0]) for r in runs)
    end = max(int(r.ts[-1]) for r in runs)
    try:
        return await services.benchmarks.closes(user_id, symbol, timeframe, start, end), None
    except (ValidationFailed, DependencyUnavailable) as exc:
        if wanted is not None:
            raise  # asked for by name: say why it cannot be had
        return None, f"no benchmark: {exc.detail}"


def _note(report: dict[str, Any], note: str | None) -> dict[str, Any]:
    if note is not None:
        report["conventions"]["benchmark_note"] = note
    return report


async def run_report(
    services: Analytics,
    user_id: str,
    kind: str,
    run_id: str,
    options: Options,
    benchmark: str | None,
) -> dict[str, Any]:
    run = await services.runs.load(user_id, run_id, kind)
    bench, note = await benchmark_for(services, user_id, [run], benchmark)
    report = await asyncio.to_thread(analyse_run, run, options=options, benchmark=bench)
    return _note(report, note)


async def portfolio_report(
    services: Analytics,
    user_id: str,
    portfolio_id: str,
    options: Options,
    benchmark: str | None,
) -> dict[str, Any]:
    definition = await services.portfolios.get(user_id, portfolio_id)
    members = []
    for member in definition["members"]:
        try:
            members.append(await services.runs.load(user_id, member["id"], member["kind"]))
        except NotFound:
            raise NotFound(
                f"member {member['kind']} {member['id']} of portfolio {portfolio_id} is gone"
            ) from None
    bench, note = await benchmark_for(
        services, user_id, members, benchmark or definition.get("benchmark")
    )
    report = await asyncio.to_thread(
        analyse_portfolio,
        definition["name"],
        members,
        weighting=definition["weighting"],
        given=[m.get("weight") for m in definition["members"]],
        options=options,
        benchmark=bench,
    )
    report["portfolio"] = {
        "id": definition["id"],
        "name": definition["name"],
        "weighting": definition["weighting"],
        "benchmark": definition.get("benchmark"),
    }
    return _note(report, note)


async def comparison_report(
    services: Analytics,
    user_id: str,
    strategy_id: str,
    version: int,
    backtest_id: str | None,
    options: Options,
    confidence: float,
) -> dict[str, Any]:
    """A strategy version's backtest (``backtest_id``, else its latest) and its sessions."""
    rows = await services.runs.rows_of_strategy(user_id, strategy_id, version)
    backtests = [r for r in rows if r.kind == BACKTEST]
    if backtest_id is not None:
        backtests = [r for r in backtests if r.id == backtest_id]
    if not backtests:
        raise NotFound(
            f"no backtest of strategy {strategy_id!r} version {version} known to analytics"
            + (f" with id {backtest_id!r}" if backtest_id else "")
        )
    sessions = [r for r in rows if r.kind == SESSION and r.capital is not None]
    backtest = await services.runs.load_row(backtests[-1])
    live = await services.runs.load_many(sessions)
    bench, note = await benchmark_for(services, user_id, [backtest], None)

    def build() -> dict[str, Any]:
        report = analyse_run(backtest, options=options, benchmark=bench)
        report.update(compare(backtest, live, confidence=confidence))
        report["kind"] = "comparison"
        report["title"] = f"Backtest vs live: strategy {strategy_id} v{version}"
        report["subtitle"] = (
            f"backtest {backtest.id} · {len(live)} session(s) · {backtest.symbol} "
            f"{backtest.timeframe}"
        )
        return report

    return _note(await asyncio.to_thread(build), note)


def thin(report: dict[str, Any], points: int) -> dict[str, Any]:
    """The report with its chart series cut to at most ``points`` bars (LTTB on equity)."""
    series = report.get("series")
    if series and len(series["ts"]) > points:
        keep = lttb_indices(
            np.asarray(series["ts"], dtype=np.float64),
            np.asarray(series["equity"], dtype=np.float64),
            points,
        ).tolist()
        report["series"] = {
            **series,
            "ts": [series["ts"][k] for k in keep],
            **{
                name: [series[name][k] for k in keep]
                for name in SERIES
                if series.get(name) is not None
            },
        }
    overlay = report.get("overlay")
    if overlay:
        overlay["backtest"] = _thin_line(overlay["backtest"], points)
        overlay["live"] = [{**line, **_thin_line(line, points)} for line in overlay["live"]]
    return report


def _thin_line(line: dict[str, Any], points: int) -> dict[str, Any]:
    if len(line["ts"]) <= points:
        return line
    keep = lttb_indices(
        np.asarray(line["ts"], dtype=np.float64),
        np.asarray(line["equity"], dtype=np.float64),
        points,
    ).tolist()
    return {"ts": [line["ts"][k] for k in keep], "equity": [line["equity"][k] for k in keep]}
