"""The HTML tear sheet: one self-contained page rendered from a report dict.

The report is the JSON-ready dict the web app also reads, so the renderer is tolerant: every
section but ``kind`` and ``title`` may be absent or None and is then left out, and a value that
is None, NaN or not a number shows as a dash. The page makes no request of its own: CSS is
inline, charts are inline SVG (`analytics_service.charts`) and there is no script. The jinja2
template autoescapes, so titles, names and symbols cannot inject markup.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import jinja2
import numpy as np

from algotrade import epoch
from analytics_service.charts import (
    DASH,
    HALF_WIDTH,
    Chart,
    FloatArray,
    Line,
    Marker,
    VarLine,
    correlation_heatmap,
    finite,
    format_count,
    format_ms,
    format_number,
    format_pct,
    histogram_chart,
    line_chart,
    month_key,
    monthly_heatmap,
    underwater_chart,
)

KIND_LABELS: Final = {
    "backtest": "Backtest",
    "session": "Live session",
    "portfolio": "Portfolio",
    "comparison": "Backtest vs live",
}
VAR_METHODS: Final = {
    "historical": "Historical",
    "gaussian": "Gaussian",
    "cornish_fisher": "Cornish-Fisher",
}
VERDICTS: Final = {
    "consistent": "Consistent",
    "diverging": "Diverging",
    "insufficient_data": "Insufficient data",
}
TRADE_STATUS: Final = {
    "matched": "Matched",
    "backtest_only": "Backtest only",
    "live_only": "Live only",
}
TOP_DRAWDOWNS: Final = 10
DIVERGENCE_TRADE_ROWS: Final = 50
STRATEGY_COLOR: Final = "#2563eb"
BENCHMARK_COLOR: Final = "#9ca3af"
ROLLING_COLOR: Final = "#7c3aed"
PALETTE: Final = ("#ea580c", "#059669", "#db2777", "#0891b2", "#ca8a04", "#4f46e5", "#65a30d")
VAR_COLORS: Final = ("#7c3aed", "#ea580c", "#0891b2", "#db2777", "#ca8a04", "#374151")


@dataclass(frozen=True)
class Card:
    """One headline figure."""

    label: str
    value: str
    tone: str = ""
    note: str = ""


@dataclass(frozen=True)
class Cell:
    text: str
    tone: str = ""
    badge: str = ""  # a CSS class: the cell shows as a pill
    bar: float | None = None  # 0..1: a proportional bar drawn behind the text


@dataclass(frozen=True)
class Table:
    columns: tuple[str, ...]
    numeric: tuple[bool, ...]
    rows: list[list[Cell]]
    note: str = ""


@dataclass(frozen=True)
class ChartPanel:
    key: str
    title: str
    chart: Chart
    hint: str = ""


@dataclass
class Page:
    """Everything the template shows, already formatted; a section that is None or empty is
    left out."""

    title: str
    kind: str
    kind_label: str
    subtitle: str | None = None
    meta: list[str] = field(default_factory=list)
    headline: list[Card] = field(default_factory=list)
    divergence: dict[str, Any] | None = None
    charts: dict[str, ChartPanel] = field(default_factory=dict)
    trades: list[tuple[str, str]] = field(default_factory=list)
    risk_var: Table | None = None
    risk_summary: list[tuple[str, str]] = field(default_factory=list)
    drawdowns: Table | None = None
    members: Table | None = None
    exposure: Table | None = None
    exposure_note: str = ""
    divergence_trades: Table | None = None
    metrics_table: list[tuple[str, str]] = field(default_factory=list)
    conventions: list[str] = field(default_factory=list)


def render_tearsheet(report: Mapping[str, Any]) -> str:
    """The report as one self-contained HTML document."""
    return _template().render(page=_page(report))


@functools.cache
def _template() -> jinja2.Template:
    # Compiled once per process: compiling the template costs more than rendering it.
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("analytics_service", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return environment.get_template("tearsheet.html.j2")


# -- reading the report tolerantly --------------------------------------------------------


def _mapping(value: object) -> Mapping[str, Any] | None:
    return value if isinstance(value, Mapping) else None


def _records(value: object) -> list[Mapping[str, Any]]:
    if not isinstance(value, Sequence) or isinstance(value, str | bytes):
        return []
    return [item for item in value if isinstance(item, Mapping)]


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and finite(value) is not None:
        return str(value)
    return None


def _floats(value: object) -> FloatArray | None:
    """A list of numbers (None allowed) as a float64 array with NaN for the gaps."""
    if not isinstance(value, Sequence) or isinstance(value, str | bytes) or not value:
        return None
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        array = np.array([finite(v) if finite(v) is not None else np.nan for v in value])
    return array if array.ndim == 1 else None


def _aligned(ts: FloatArray | None, values: FloatArray | None) -> tuple[FloatArray, FloatArray]:
    if ts is None or values is None:
        return np.empty(0), np.empty(0)
    length = min(ts.size, values.size)
    return ts[:length], values[:length]


def _date_text(value: object) -> str | None:
    """An ISO string or epoch ms as ``YYYY-MM-DD[ HH:MM] UTC``-style text."""
    if isinstance(value, str):
        try:
            moment = epoch.parse_iso(value, assume_utc=True)
        except ValueError:
            return value
        return _moment_text(moment)
    number = finite(value)
    return None if number is None else format_ms(number)


def _moment_text(moment: datetime) -> str:
    if moment.hour == moment.minute == moment.second == 0:
        return moment.strftime("%Y-%m-%d")
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _tone(value: object) -> str:
    number = finite(value)
    if number is None or number == 0:
        return ""
    return "pos" if number > 0 else "neg"


# -- building the page --------------------------------------------------------------------


def _page(report: Mapping[str, Any]) -> Page:
    kind = _text(report.get("kind")) or "backtest"
    page = Page(
        title=_text(report.get("title")) or "Untitled report",
        kind=kind if kind in KIND_LABELS else "other",  # a CSS class, so only known names
        kind_label=KIND_LABELS.get(kind, kind.replace("_", " ").capitalize()),
        subtitle=_text(report.get("subtitle")),
    )
    series = _mapping(report.get("series")) or {}
    metrics = _mapping(report.get("metrics"))
    risk = _mapping(report.get("risk"))
    page.meta = _meta(report, series)
    if metrics is not None:
        page.headline = _headline(metrics)
        page.metrics_table = _metrics_table(metrics)
    _divergence(page, _mapping(report.get("divergence")))
    _charts(page, report, series, risk, metrics)
    trades = _mapping(report.get("trades"))
    if trades is not None:
        page.trades = _trade_stats(trades)
    if risk is not None:
        _risk(page, risk)
    page.drawdowns = _drawdowns(report.get("drawdowns"))
    page.members = _members(report.get("members"))
    _exposure(page, _mapping(report.get("exposure")))
    page.conventions = _conventions(_mapping(report.get("conventions")))
    return page


def _meta(report: Mapping[str, Any], series: Mapping[str, Any]) -> list[str]:
    meta: list[str] = []
    period = _mapping(report.get("period")) or {}
    start, end = _date_text(period.get("start")), _date_text(period.get("end"))
    if start is None and end is None:  # no period: the series says which one it covers
        stamps = _floats(series.get("ts"))
        if stamps is not None and np.isfinite(stamps).any():
            start, end = format_ms(np.nanmin(stamps)), format_ms(np.nanmax(stamps))
    if start is not None or end is not None:
        meta.append(f"{start or DASH} \u2192 {end or DASH}")
    bars = finite(period.get("bars"))
    if bars is not None:
        meta.append(f"{format_count(bars)} bars")
    timeframe = _text(period.get("timeframe"))
    if timeframe:
        meta.append(f"{timeframe} bars" if bars is None else f"timeframe {timeframe}")
    generated = _date_text(report.get("generated_at"))
    if generated is not None:
        meta.append(f"generated {generated}")
    return meta


def _headline(metrics: Mapping[str, Any]) -> list[Card]:
    total, benchmark = metrics.get("total_return"), metrics.get("benchmark_return")
    drawdown = finite(metrics.get("max_drawdown"))
    duration = finite(metrics.get("max_drawdown_duration"))
    profit_factor = finite(metrics.get("profit_factor"))
    exposure = finite(metrics.get("exposure"))
    return [
        Card(
            "Total return",
            format_pct(total, signed=True),
            _tone(total),
            f"benchmark {format_pct(benchmark, signed=True)}"
            if finite(benchmark) is not None
            else "",
        ),
        Card("CAGR", format_pct(metrics.get("cagr"), signed=True), _tone(metrics.get("cagr"))),
        Card("Sharpe", format_number(metrics.get("sharpe")), _tone(metrics.get("sharpe"))),
        Card("Sortino", format_number(metrics.get("sortino")), _tone(metrics.get("sortino"))),
        Card(
            "Max drawdown",
            format_pct(-abs(drawdown)) if drawdown is not None else DASH,
            "neg" if drawdown else "",
            f"{format_count(duration)} bars under water" if duration is not None else "",
        ),
        Card("Volatility", format_pct(metrics.get("volatility")), "", "annualised"),
        Card(
            "Win rate",
            format_pct(metrics.get("win_rate"), 1),
            "",
            f"profit factor {format_number(profit_factor)}" if profit_factor is not None else "",
        ),
        Card(
            "Trades",
            format_count(metrics.get("trade_count")),
            "",
            f"exposure {format_pct(exposure, 0)}" if exposure is not None else "",
        ),
    ]


def _metrics_table(metrics: Mapping[str, Any]) -> list[tuple[str, str]]:
    rows = [
        ("Calmar", format_number(metrics.get("calmar"))),
        ("Profit factor", format_number(metrics.get("profit_factor"))),
        ("Expectancy / trade", format_number(metrics.get("expectancy"), signed=True)),
        ("Average win", format_number(metrics.get("avg_win"), signed=True)),
        ("Average loss", format_number(metrics.get("avg_loss"), signed=True)),
        ("Exposure", format_pct(metrics.get("exposure"), 1)),
        ("Turnover", format_number(metrics.get("turnover"))),
        ("Benchmark return", format_pct(metrics.get("benchmark_return"), signed=True)),
        ("Max drawdown length", _bars_text(metrics.get("max_drawdown_duration"), 0)),
        ("Final equity", format_number(metrics.get("final_equity"))),
    ]
    return rows


def _charts(
    page: Page,
    report: Mapping[str, Any],
    series: Mapping[str, Any],
    risk: Mapping[str, Any] | None,
    metrics: Mapping[str, Any] | None,
) -> None:
    panels: list[ChartPanel | None] = [_overlay(_mapping(report.get("overlay")))]
    ts = _floats(series.get("ts"))
    equity_ts, equity = _aligned(ts, _floats(series.get("equity")))
    bench_ts, benchmark = _aligned(ts, _floats(series.get("benchmark")))
    beta = _mapping(risk.get("beta")) if risk is not None else None
    bench_name = _text(beta.get("benchmark")) if beta is not None else None
    lines = [Line("Strategy", equity_ts, equity, STRATEGY_COLOR, 1.8)]
    if benchmark.size:
        label = f"Benchmark ({bench_name})" if bench_name else "Benchmark"
        lines.append(Line(label, bench_ts, benchmark, BENCHMARK_COLOR, 1.4))
    equity_chart = line_chart(lines, label="Equity", kind="number", height=320)
    if equity_chart is not None:
        hint = ""
        if metrics is not None and finite(metrics.get("final_equity")) is not None:
            hint = f"final equity {format_number(metrics.get('final_equity'))}"
        panels.append(ChartPanel("equity", "Equity", equity_chart, hint))

    dd_ts, drawdown = _aligned(ts, _floats(series.get("drawdown")))
    if not drawdown.size and equity.size:  # derive it rather than drop the chart
        with np.errstate(divide="ignore", invalid="ignore"):
            drawdown = 1 - equity / np.fmax.accumulate(equity)
        dd_ts = equity_ts
    underwater = underwater_chart(dd_ts, drawdown)
    if underwater is not None:
        panels.append(
            ChartPanel("drawdown", "Drawdown", underwater, "distance below the last peak")
        )

    monthly = _monthly(report.get("monthly_returns"))
    if monthly is not None:
        panels.append(
            ChartPanel(
                "monthly", "Monthly returns", monthly, "UTC calendar months; year compounded"
            )
        )

    histogram = _histogram(_mapping(report.get("return_histogram")), risk)
    if histogram is not None:
        panels.append(ChartPanel("distribution", "Return distribution", histogram, "bar returns"))

    roll_ts, rolling = _aligned(ts, _floats(series.get("rolling_sharpe")))
    window = finite(series.get("rolling_window"))
    rolling_chart = line_chart(
        [Line("Rolling Sharpe", roll_ts, rolling, ROLLING_COLOR, 1.5)],
        label="Rolling Sharpe",
        kind="ratio",
        width=HALF_WIDTH,
        height=280,
        zero_line=True,
    )
    if rolling_chart is not None:
        hint = f"over {format_count(window)} bars, annualised" if window else "annualised"
        panels.append(ChartPanel("rolling-sharpe", "Rolling Sharpe", rolling_chart, hint))

    correlation = _mapping(report.get("correlation"))
    if correlation is not None:
        labels = [_text(name) or DASH for name in correlation.get("labels") or ()]
        matrix = [
            list(row) if isinstance(row, Sequence) else []
            for row in correlation.get("matrix") or ()
        ]
        heatmap = correlation_heatmap(labels, matrix)
        if heatmap is not None:
            panels.append(ChartPanel("correlation", "Correlation", heatmap, "of bar returns"))
    page.charts = {panel.key: panel for panel in panels if panel is not None}


def _overlay(overlay: Mapping[str, Any] | None) -> ChartPanel | None:
    if overlay is None:
        return None
    lines: list[Line] = []
    backtest = _mapping(overlay.get("backtest"))
    if backtest is not None:
        ts, equity = _aligned(_floats(backtest.get("ts")), _floats(backtest.get("equity")))
        lines.append(Line("Backtest", ts, equity, STRATEGY_COLOR, 1.8))
    for index, live in enumerate(_records(overlay.get("live"))):
        ts, equity = _aligned(_floats(live.get("ts")), _floats(live.get("equity")))
        name = _text(live.get("name")) or f"Live {index + 1}"
        lines.append(Line(name, ts, equity, PALETTE[index % len(PALETTE)], 1.8))
    start = finite(overlay.get("live_start"))
    markers = [Marker(start, "live start")] if start is not None else []
    chart = line_chart(lines, label="Backtest and live equity", kind="number", markers=markers)
    if chart is None:
        return None
    hint = f"live since {format_ms(start)}" if start is not None else ""
    return ChartPanel("overlay", "Backtest vs live", chart, hint)


def _monthly(value: object) -> Chart | None:
    cells: dict[tuple[int, int], float | None] = {}
    for row in _records(value):
        key = month_key(row.get("year"), row.get("month"))
        if key is not None:
            cells[key] = finite(row.get("return"))
    return monthly_heatmap(cells) if cells else None


def _histogram(histogram: Mapping[str, Any] | None, risk: Mapping[str, Any] | None) -> Chart | None:
    if histogram is None:
        return None
    edges, counts = _floats(histogram.get("edges")), _floats(histogram.get("counts"))
    if edges is None or counts is None:
        return None
    var_lines: list[VarLine] = []
    entries = _records(risk.get("var")) if risk is not None else []
    # The histogram holds one-bar returns, so only one-bar VaR belongs on it.
    one_bar = [e for e in entries if finite(e.get("horizon")) in (None, 1.0)]
    for entry in one_bar[: len(VAR_COLORS)]:
        var = finite(entry.get("var"))
        if var is None:
            continue
        method = _text(entry.get("method")) or ""
        confidence = format_pct(entry.get("confidence"), 0)
        label = f"VaR {confidence} {VAR_METHODS.get(method, method)} ({format_pct(-abs(var))})"
        var_lines.append(VarLine(label, abs(var), VAR_COLORS[len(var_lines)]))
    return histogram_chart(edges, counts, var_lines)


def _trade_stats(trades: Mapping[str, Any]) -> list[tuple[str, str]]:
    held = finite(trades.get("avg_bars_held"))
    return [
        ("Closed trades", format_count(trades.get("count"))),
        ("Win rate", format_pct(trades.get("win_rate"), 1)),
        ("Profit factor", format_number(trades.get("profit_factor"))),
        ("Expectancy", format_number(trades.get("expectancy"), signed=True)),
        ("Average win", format_number(trades.get("avg_win"), signed=True)),
        ("Average loss", format_number(trades.get("avg_loss"), signed=True)),
        ("Best trade", format_number(trades.get("best"), signed=True)),
        ("Worst trade", format_number(trades.get("worst"), signed=True)),
        ("Average bars held", DASH if held is None else format_number(held, 1)),
    ]


def _risk(page: Page, risk: Mapping[str, Any]) -> None:
    rows: list[list[Cell]] = []
    for entry in _records(risk.get("var")):
        method = _text(entry.get("method")) or DASH
        horizon = finite(entry.get("horizon"))
        var, cvar = finite(entry.get("var")), finite(entry.get("cvar"))
        rows.append(
            [
                Cell(VAR_METHODS.get(method, method)),
                Cell(format_pct(entry.get("confidence"), 1)),
                Cell(
                    DASH
                    if horizon is None
                    else f"{format_count(horizon)} bar{'s' * (horizon != 1)}"
                ),
                Cell(format_pct(None if var is None else -abs(var)), "neg" if var else ""),
                Cell(format_pct(None if cvar is None else -abs(cvar)), "neg" if cvar else ""),
            ]
        )
    if rows:
        page.risk_var = Table(
            ("Method", "Confidence", "Horizon", "VaR", "CVaR"),
            (False, True, True, True, True),
            rows,
            "losses as returns over the horizon; CVaR is the mean loss beyond VaR",
        )
    summary: list[tuple[str, str]] = []
    if "volatility" in risk:
        summary.append(("Volatility (annualised)", format_pct(risk.get("volatility"))))
    beta = _mapping(risk.get("beta"))
    if beta is not None:
        name = _text(beta.get("benchmark"))
        suffix = f" vs {name}" if name else ""
        summary += [
            (f"Beta{suffix}", format_number(beta.get("beta"))),
            ("Alpha (annualised)", format_pct(beta.get("alpha"), signed=True)),
            ("Correlation", format_number(beta.get("correlation"))),
            ("R\u00b2", format_number(beta.get("r_squared"))),
        ]
    page.risk_summary = summary


def _drawdowns(value: object) -> Table | None:
    records = _records(value)
    if not records:
        return None
    ranked = sorted(records, key=lambda r: -(finite(r.get("depth")) or 0.0))[:TOP_DRAWDOWNS]
    rows: list[list[Cell]] = []
    for rank, entry in enumerate(ranked, start=1):
        depth = finite(entry.get("depth"))
        recovered = finite(entry.get("recovery")) is not None
        rows.append(
            [
                Cell(str(rank)),
                Cell(format_pct(None if depth is None else -abs(depth)), "neg" if depth else ""),
                Cell(format_ms(entry.get("start"))),
                Cell(format_ms(entry.get("trough"))),
                Cell(
                    format_ms(entry.get("recovery")) if recovered else "not recovered",
                    "" if recovered else "muted",
                ),
                Cell(format_count(entry.get("length"))),
                Cell(format_count(entry.get("to_trough"))),
                Cell(format_count(entry.get("recovery_bars"))),
            ]
        )
    note = f"deepest {len(ranked)} of {len(records)}" if len(records) > len(ranked) else ""
    return Table(
        ("#", "Depth", "Start", "Trough", "Recovery", "Bars", "To trough", "To recover"),
        (True, True, False, False, False, True, True, True),
        rows,
        note,
    )


def _members(value: object) -> Table | None:
    records = _records(value)
    if not records:
        return None
    rows = []
    for member in records:
        total = member.get("total_return")
        drawdown = finite(member.get("max_drawdown"))
        rows.append(
            [
                Cell(_text(member.get("name")) or _text(member.get("id")) or DASH),
                Cell(_text(member.get("kind")) or DASH, "muted"),
                Cell(_text(member.get("symbol")) or DASH),
                Cell(format_pct(member.get("weight"), 1)),
                Cell(format_pct(total, signed=True), _tone(total)),
                Cell(format_number(member.get("sharpe"))),
                Cell(
                    format_pct(None if drawdown is None else -abs(drawdown)),
                    "neg" if drawdown else "",
                ),
            ]
        )
    return Table(
        ("Member", "Kind", "Symbol", "Weight", "Total return", "Sharpe", "Max drawdown"),
        (False, False, False, True, True, True, True),
        rows,
    )


def _exposure(page: Page, exposure: Mapping[str, Any] | None) -> None:
    if exposure is None:
        return
    records = _records(exposure.get("by_symbol"))
    largest = max((abs(finite(r.get("exposure")) or 0.0) for r in records), default=0.0)
    rows = [
        [
            Cell(_text(r.get("symbol")) or DASH),
            Cell(format_pct(r.get("weight"), 1)),
            Cell(
                format_pct(r.get("exposure"), 1),
                bar=abs(finite(r.get("exposure")) or 0.0) / largest if largest else None,
            ),
        ]
        for r in records
    ]
    if rows:
        page.exposure = Table(("Symbol", "Weight", "Exposure"), (False, True, True), rows)
    notes = []
    if finite(exposure.get("hhi")) is not None:
        notes.append(f"concentration (HHI) {format_number(exposure.get('hhi'), 3)}")
    if finite(exposure.get("effective_symbols")) is not None:
        notes.append(f"effective symbols {format_number(exposure.get('effective_symbols'), 1)}")
    page.exposure_note = " \u00b7 ".join(notes)
    if page.exposure is None and notes:
        page.exposure = Table(("Symbol", "Weight", "Exposure"), (False, True, True), [])


def _divergence(page: Page, divergence: Mapping[str, Any] | None) -> None:
    if divergence is None:
        return
    verdict = _text(divergence.get("verdict")) or "insufficient_data"
    expected = _mapping(divergence.get("expected_range"))
    expected_text = DASH
    if expected is not None:
        expected_text = (
            f"{format_pct(expected.get('low'), signed=True)} to "
            f"{format_pct(expected.get('high'), signed=True)}"
        )
    stats = [
        ("Return drift", format_pct(divergence.get("return_drift"), signed=True)),
        ("Sharpe drift", format_number(divergence.get("sharpe_drift"), signed=True)),
        ("Expected range", expected_text),
        ("Matched trades", format_count(divergence.get("trade_matches"))),
        ("Mismatched trades", format_count(divergence.get("trade_mismatches"))),
        ("Mean entry delay", _bars_text(divergence.get("mean_entry_delay_bars"))),
        ("Mean price difference", format_number(divergence.get("mean_price_diff"), 4, signed=True)),
    ]
    page.divergence = {
        "verdict": verdict if verdict in VERDICTS else "insufficient_data",
        "verdict_label": VERDICTS.get(verdict, verdict.replace("_", " ").capitalize()),
        "reasons": [text for text in map(_text, divergence.get("reasons") or ()) if text],
        "stats": stats,
    }
    trades = _records(divergence.get("trades"))
    if not trades:
        return
    rows = []
    for trade in trades[:DIVERGENCE_TRADE_ROWS]:
        status = _text(trade.get("status")) or ""
        rows.append(
            [
                Cell(TRADE_STATUS.get(status, status or DASH), badge=f"status-{status}"),
                Cell(_text(trade.get("side")) or DASH),
                Cell(format_ms(trade.get("backtest_entry"))),
                Cell(format_ms(trade.get("live_entry"))),
                Cell(
                    format_number(trade.get("pnl_backtest"), signed=True),
                    _tone(trade.get("pnl_backtest")),
                ),
                Cell(
                    format_number(trade.get("pnl_live"), signed=True), _tone(trade.get("pnl_live"))
                ),
            ]
        )
    shown = len(rows)
    note = f"first {shown} of {len(trades)} trades" if len(trades) > shown else ""
    page.divergence_trades = Table(
        ("Status", "Side", "Backtest entry", "Live entry", "P&L backtest", "P&L live"),
        (False, False, False, False, True, True),
        rows,
        note,
    )


def _bars_text(value: object, digits: int = 1) -> str:
    number = finite(value)
    return DASH if number is None else f"{format_number(number, digits)} bars"


def _conventions(conventions: Mapping[str, Any] | None) -> list[str]:
    if conventions is None:
        return []
    out: list[str] = []
    periods = finite(conventions.get("periods_per_year"))
    if periods is not None:
        out.append(f"{format_number(periods, 0 if periods == int(periods) else 2)} periods a year")
    if "risk_free_rate" in conventions:
        out.append(f"risk-free rate {format_pct(conventions.get('risk_free_rate'))}")
    calendar = _text(conventions.get("calendar"))
    if calendar:
        out.append(f"calendar {calendar}")
    for key, value in conventions.items():
        if key in ("periods_per_year", "risk_free_rate", "calendar"):
            continue
        text = _text(value) if not isinstance(value, bool) else str(value).lower()
        if text is not None:
            out.append(f"{str(key).replace('_', ' ')} {text}")
    return out
