"""The HTML tear sheet: one self-contained, well-formed page whatever the report holds."""

from __future__ import annotations

import math
import re
from collections import Counter
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from algotrade.bars import Bars
from analytics_service.charts import MAX_POINTS, time_ticks
from analytics_service.tearsheet import render_tearsheet

DATA = Path(__file__).resolve().parents[2] / "data"
CAPITAL = 100_000.0
SVG_NS = "http://www.w3.org/2000/svg"
CHART_SECTIONS = {
    "overlay",
    "equity",
    "drawdown",
    "monthly",
    "distribution",
    "rolling-sharpe",
    "correlation",
}
VOID = {"meta", "link", "br", "hr", "img", "input", "col", "area", "base", "wbr", "source"}
DASH = "\u2014"
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


class Structure(HTMLParser):
    """Walks the page: checks every element is closed in order and counts SVGs per section."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, str | None]] = []
        self.errors: list[str] = []
        self.tags: Counter[str] = Counter()
        self.svgs_in: Counter[str] = Counter()
        self.section_ids: list[str] = []
        self.points: list[int] = []
        self.text: list[str] = []

    def _section(self) -> str | None:
        return next((sid for tag, sid in reversed(self.stack) if tag == "section" and sid), None)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] += 1
        attributes = dict(attrs)
        if tag == "svg":
            self.svgs_in[self._section() or "<none>"] += 1
        if tag == "section" and attributes.get("id"):
            self.section_ids.append(str(attributes["id"]))
        if tag == "polyline":
            self.points.append(len((attributes.get("points") or "").split()))
        if tag not in VOID:
            self.stack.append((tag, attributes.get("id")))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in VOID:
            self.handle_starttag(tag, attrs)
            return
        self.handle_starttag(tag, attrs)
        self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.stack or self.stack[-1][0] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1][0] if self.stack else 'nothing'}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def walk(html: str) -> Structure:
    parser = Structure()
    parser.feed(html)
    parser.close()
    assert parser.errors == []
    assert parser.stack == [], f"unclosed: {parser.stack}"
    assert html.lstrip().startswith("<!DOCTYPE html>")
    assert parser.tags["html"] == parser.tags["head"] == parser.tags["body"] == 1
    return parser


# -- a report from real bars --------------------------------------------------------------


def _monthly(ts: np.ndarray, equity: np.ndarray) -> list[dict[str, Any]]:
    months = ts.astype("datetime64[ms]").astype("datetime64[M]")
    last = np.flatnonzero(np.append(months[1:] != months[:-1], True))
    closes = np.concatenate(([CAPITAL], equity[last]))
    out = []
    for index, ret in zip(last, closes[1:] / closes[:-1] - 1, strict=True):
        month = months[index].astype(object)
        out.append({"year": month.year, "month": month.month, "return": float(ret)})
    return out


def _drawdowns(ts: np.ndarray, equity: np.ndarray) -> list[dict[str, Any]]:
    peak = np.maximum.accumulate(equity)
    under = equity < peak
    episodes: list[dict[str, Any]] = []
    i = 0
    while i < len(equity):
        if not under[i]:
            i += 1
            continue
        start = i - 1
        j = i
        while j < len(equity) and under[j]:
            j += 1
        trough = start + int(np.argmin(equity[start:j]))
        recovered = j < len(equity)
        episodes.append(
            {
                "start": int(ts[start]),
                "trough": int(ts[trough]),
                "recovery": int(ts[j]) if recovered else None,
                "depth": float(1 - equity[trough] / peak[trough]),
                "length": j - start,
                "to_trough": trough - start,
                "recovery_bars": j - trough if recovered else None,
            }
        )
        i = j
    return sorted(episodes, key=lambda e: -e["depth"])


def _rolling_sharpe(returns: np.ndarray, window: int) -> list[float | None]:
    out: list[float | None] = [None] * len(returns)
    windows = np.lib.stride_tricks.sliding_window_view(returns, window)
    sharpe = windows.mean(axis=1) / windows.std(axis=1, ddof=1) * math.sqrt(252)
    out[window - 1 :] = sharpe.tolist()
    return out


def build_report(ts: np.ndarray, close: np.ndarray, *, timeframe: str = "1d") -> dict[str, Any]:
    """Every section of a report, for buy and hold of ``close`` (a half-invested benchmark)."""
    equity = CAPITAL * close / close[0]
    benchmark = CAPITAL * (0.5 + 0.5 * close / close[0])
    returns = np.diff(equity, prepend=CAPITAL) / np.concatenate(([CAPITAL], equity[:-1]))
    drawdown = 1 - equity / np.maximum.accumulate(equity)
    years = len(equity) / 252
    vol = float(returns.std(ddof=1) * math.sqrt(252))
    sharpe = float(returns.mean() / returns.std(ddof=1) * math.sqrt(252))
    counts, edges = np.histogram(returns, bins=60)
    var95 = float(-np.quantile(returns, 0.05))
    var99 = float(-np.quantile(returns, 0.01))
    cvar95 = float(-returns[returns <= -var95].mean())
    cvar99 = float(-returns[returns <= -var99].mean())
    split = int(len(ts) * 0.8)
    live_ts = ts[split:]
    rng = np.random.default_rng(7)
    drift = np.cumprod(1 + rng.normal(-0.0002, 0.002, len(live_ts)))
    return {
        "kind": "comparison",
        "title": "SPY buy and hold",
        "subtitle": "Daily bars, long only, no costs",
        "generated_at": "2026-12-03T07:00:00Z",
        "period": {
            "start": "1998-01-02T00:00:00Z",
            "end": "2021-04-30T00:00:00Z",
            "bars": len(ts),
            "timeframe": timeframe,
        },
        "conventions": {"periods_per_year": 252.0, "risk_free_rate": 0.0, "calendar": "xnys"},
        "metrics": {
            "total_return": float(equity[-1] / CAPITAL - 1),
            "cagr": float((equity[-1] / CAPITAL) ** (1 / years) - 1),
            "volatility": vol,
            "sharpe": sharpe,
            "sortino": sharpe * 1.3,
            "calmar": 0.18,
            "max_drawdown": float(drawdown.max()),
            "max_drawdown_duration": 1800,
            "win_rate": 1.0,
            "profit_factor": None,
            "expectancy": float(equity[-1] - CAPITAL),
            "avg_win": float(equity[-1] - CAPITAL),
            "avg_loss": None,
            "exposure": 1.0,
            "trade_count": 1,
            "turnover": 1.0,
            "benchmark_return": float(benchmark[-1] / CAPITAL - 1),
            "final_equity": float(equity[-1]),
        },
        "series": {
            "ts": ts.tolist(),
            "equity": equity.tolist(),
            "benchmark": benchmark.tolist(),
            "drawdown": drawdown.tolist(),
            "rolling_sharpe": _rolling_sharpe(returns, 63),
            "rolling_window": 63,
        },
        "monthly_returns": _monthly(ts, equity),
        "return_histogram": {"edges": edges.tolist(), "counts": counts.tolist()},
        "risk": {
            "var": [
                {
                    "method": "historical",
                    "confidence": 0.95,
                    "horizon": 1,
                    "var": var95,
                    "cvar": cvar95,
                },
                {
                    "method": "historical",
                    "confidence": 0.99,
                    "horizon": 1,
                    "var": var99,
                    "cvar": cvar99,
                },
                {
                    "method": "gaussian",
                    "confidence": 0.95,
                    "horizon": 1,
                    "var": 1.645 * vol / math.sqrt(252),
                    "cvar": 2.063 * vol / math.sqrt(252),
                },
                {
                    "method": "cornish_fisher",
                    "confidence": 0.95,
                    "horizon": 10,
                    "var": var95 * math.sqrt(10),
                    "cvar": cvar95 * math.sqrt(10),
                },
            ],
            "volatility": vol,
            "beta": {
                "benchmark": "SPY",
                "beta": 2.0,
                "alpha": 0.0,
                "correlation": 1.0,
                "r_squared": 1.0,
            },
        },
        "drawdowns": _drawdowns(ts, equity)[:15],
        "trades": {
            "count": 1,
            "win_rate": 1.0,
            "profit_factor": None,
            "expectancy": float(equity[-1] - CAPITAL),
            "avg_win": float(equity[-1] - CAPITAL),
            "avg_loss": None,
            "best": float(equity[-1] - CAPITAL),
            "worst": float(equity[-1] - CAPITAL),
            "avg_bars_held": float(len(ts)),
        },
        "members": [
            {
                "id": "bt-1",
                "kind": "backtest",
                "name": "SPY buy and hold",
                "symbol": "SPY",
                "weight": 0.6,
                "total_return": float(equity[-1] / CAPITAL - 1),
                "sharpe": sharpe,
                "max_drawdown": float(drawdown.max()),
            },
            {
                "id": "ses-2",
                "kind": "session",
                "name": "SPY half invested",
                "symbol": "SPY",
                "weight": 0.4,
                "total_return": float(benchmark[-1] / CAPITAL - 1),
                "sharpe": sharpe,
                "max_drawdown": float(drawdown.max()) / 2,
            },
        ],
        "correlation": {
            "labels": ["SPY buy and hold", "SPY half invested", "Cash"],
            "matrix": [[1.0, 0.99, None], [0.99, 1.0, -0.12], [None, -0.12, 1.0]],
        },
        "exposure": {
            "by_symbol": [
                {"symbol": "SPY", "weight": 0.8, "exposure": 0.8},
                {"symbol": "QQQ", "weight": 0.2, "exposure": 0.15},
            ],
            "hhi": 0.68,
            "effective_symbols": 1.47,
        },
        "overlay": {
            "live_start": int(live_ts[0]),
            "backtest": {"ts": ts.tolist(), "equity": equity.tolist()},
            "live": [
                {
                    "name": "paper",
                    "ts": live_ts.tolist(),
                    "equity": (equity[split:] * drift).tolist(),
                },
                {
                    "name": "live",
                    "ts": live_ts.tolist(),
                    "equity": (equity[split:] * drift**2).tolist(),
                },
            ],
        },
        "divergence": {
            "verdict": "diverging",
            "reasons": [
                "live return is below the backtest's 90% range",
                "3 trades entered more than 2 bars late",
            ],
            "return_drift": -0.041,
            "sharpe_drift": -0.35,
            "expected_range": {"low": -0.02, "high": 0.06},
            "trade_matches": 52,
            "trade_mismatches": 8,
            "mean_entry_delay_bars": 0.7,
            "mean_price_diff": 0.0123,
            "trades": [
                {
                    "backtest_entry": int(live_ts[i]),
                    "live_entry": int(live_ts[i + 1]),
                    "side": "long",
                    "pnl_backtest": 12.5 * (i % 3 - 1),
                    "pnl_live": None,
                    "status": ("matched", "backtest_only", "live_only")[i % 3],
                }
                for i in range(60)
            ],
        },
    }


@pytest.fixture(scope="module")
def spy() -> Bars:
    return Bars.from_csv(DATA / "spy-1d.csv")


@pytest.fixture(scope="module")
def full_report(spy: Bars) -> dict[str, Any]:
    return build_report(spy.ts, spy.close)


@pytest.fixture(scope="module")
def full_html(full_report: dict[str, Any]) -> str:
    html = render_tearsheet(full_report)
    Path("/tmp/tearsheet-sample.html").write_text(html, encoding="utf-8")
    return html


# -- tests --------------------------------------------------------------------------------


def test_full_report_is_well_formed_with_one_svg_per_chart_section(full_html: str) -> None:
    page = walk(full_html)
    assert dict(page.svgs_in) == dict.fromkeys(CHART_SECTIONS, 1)
    assert full_html.count("<svg") == len(CHART_SECTIONS)
    for section in (
        "metrics",
        "divergence",
        "trades",
        "risk",
        "drawdowns",
        "members",
        "exposure",
        "divergence-trades",
        "all-metrics",
    ):
        assert section in page.section_ids


def test_page_makes_no_external_request(full_html: str) -> None:
    assert set(re.findall(r"\w+://[^\s\"'<>)]*", full_html)) == {SVG_NS}
    lowered = full_html.lower()
    assert "<script" not in lowered
    assert "@import" not in lowered and "url(" not in lowered
    assert not re.search(r"\s(src|href)\s*=", lowered)
    assert not re.search(r"\son\w+\s*=", lowered)  # no event handler attributes


def test_headline_strip_and_tables_show_the_report_figures(
    full_report: dict[str, Any], full_html: str
) -> None:
    total = full_report["metrics"]["total_return"]
    assert f"+{total * 100:,.2f}%" in full_html
    assert "Backtest vs live" in full_html and "Diverging" in full_html
    assert "Cornish-Fisher" in full_html and "10 bars" in full_html
    assert "2008" in full_html  # the worst drawdown's trough year, in the table and the axis


def test_axes_carry_utc_dates_and_percent_returns(full_html: str) -> None:
    drawdown_svg = full_html.split('id="drawdown"', 1)[1].split("</svg>", 1)[0]
    assert re.search(r">-\d+%</text>", drawdown_svg)
    equity_svg = full_html.split('id="equity"', 1)[1].split("</svg>", 1)[0]
    years = re.findall(r">((?:19|20)\d\d)</text>", equity_svg)
    assert len(years) >= 4 and years == sorted(years)


def test_hostile_strings_are_escaped(full_report: dict[str, Any]) -> None:
    report = dict(full_report)
    report["title"] = HOSTILE
    report["subtitle"] = HOSTILE
    report["members"] = [{**full_report["members"][0], "name": HOSTILE, "symbol": HOSTILE}]
    report["correlation"] = {"labels": [HOSTILE, "b"], "matrix": [[1.0, 0.5], [0.5, 1.0]]}
    report["overlay"] = {
        **full_report["overlay"],
        "live": [{**full_report["overlay"]["live"][0], "name": HOSTILE}],
    }
    report["divergence"] = {**full_report["divergence"], "reasons": [HOSTILE]}
    report["exposure"] = {"by_symbol": [{"symbol": HOSTILE, "weight": 1.0, "exposure": 1.0}]}
    html = render_tearsheet(report)
    walk(html)
    assert "<script" not in html.lower()
    assert "<img" not in html.lower()
    assert html.count("&lt;script&gt;") >= 8
    assert "<title>&lt;script&gt;" in html


@pytest.mark.parametrize(
    ("key", "gone"),
    [
        ("overlay", {"overlay"}),
        ("divergence", {"divergence", "divergence-trades"}),
        ("metrics", {"metrics", "all-metrics"}),
        ("monthly_returns", {"monthly"}),
        ("return_histogram", {"distribution"}),
        ("risk", {"risk"}),
        ("drawdowns", {"drawdowns"}),
        ("trades", {"trades"}),
        ("members", {"members"}),
        ("correlation", {"correlation"}),
        ("exposure", {"exposure"}),
        ("series", {"equity", "drawdown", "rolling-sharpe"}),
    ],
)
def test_sections_that_are_none_or_absent_are_left_out(
    full_report: dict[str, Any], full_html: str, key: str, gone: set[str]
) -> None:
    everything = set(walk(full_html).section_ids)
    for report in ({**full_report, key: None}, {k: v for k, v in full_report.items() if k != key}):
        page = walk(render_tearsheet(report))
        assert set(page.section_ids) == everything - gone
        assert sum(page.svgs_in.values()) == len(CHART_SECTIONS - gone)


def test_missing_values_render_as_a_dash(full_report: dict[str, Any]) -> None:
    report = dict(full_report)
    report["metrics"] = {
        **full_report["metrics"],
        "sharpe": None,
        "sortino": float("nan"),
        "cagr": float("inf"),
        "trade_count": None,
    }
    report["monthly_returns"] = [
        {"year": 2024, "month": 1, "return": None},
        {"year": 2024, "month": 2, "return": 0.01},
    ]
    html = render_tearsheet(report)
    walk(html)
    for label in ("CAGR", "Sharpe", "Sortino", "Trades"):
        assert re.search(
            rf'<div class="label">{label}</div>\s*<div class="value">{DASH}</div>', html
        ), label
    assert "nan" not in html.lower().replace("nano", "")
    assert "inf</" not in html.lower()
    monthly = html.split('id="monthly"', 1)[1].split("</svg>", 1)[0]
    assert f">{DASH}</text>" in monthly  # the January cell
    correlation = html.split('id="correlation"', 1)[1].split("</svg>", 1)[0]
    assert f"{DASH}</text>" in correlation  # the matrix's None cells


def test_divergence_trades_table_shows_at_most_fifty_rows(full_html: str) -> None:
    table = full_html.split('id="divergence-trades"', 1)[1].split("</table>", 1)[0]
    assert table.count("<tr>") == 1 + 50  # header and 50 of the 60 trades
    assert "first 50 of 60 trades" in full_html


def test_100k_bar_report_is_small_and_downsampled() -> None:
    """Size and points only: the render time is a figure of bench/bench_analytics.py."""
    rng = np.random.default_rng(42)
    n = 100_000
    ts = np.int64(1_500_000_000_000) + np.arange(n, dtype=np.int64) * 3_600_000
    close = 100 * np.exp(np.cumsum(rng.normal(0.00002, 0.004, n)))
    report = build_report(ts, close, timeframe="1h")
    html = render_tearsheet(report)
    size = len(html.encode())
    page = walk(html)
    assert size < 1_000_000
    assert page.points and max(page.points) <= MAX_POINTS
    # equity, benchmark, drawdown, rolling Sharpe, backtest + two live lines: each cut down
    assert page.tags["polyline"] >= 7
    assert sum(page.points) <= 7 * MAX_POINTS + 100


def test_minimal_report_renders() -> None:
    html = render_tearsheet({"kind": "session", "title": "x"})
    page = walk(html)
    assert "<h1>x</h1>" in html and "Live session" in html
    assert page.tags["svg"] == 0
    assert page.section_ids == []


def test_malformed_sections_are_skipped_not_fatal() -> None:
    report = {
        "kind": "portfolio",
        "title": "odd",
        "metrics": ["not", "a", "mapping"],
        "series": {"ts": [1, 2, 3], "equity": ["a", None, {}], "rolling_sharpe": "x"},
        "monthly_returns": [{"year": "two thousand", "month": 13, "return": 0.1}, 5],
        "return_histogram": {"edges": [0, 1], "counts": [1, 2, 3]},
        "correlation": {"labels": ["a", "b"], "matrix": [[1.0]]},
        "drawdowns": [{"depth": "deep"}],
        "members": [{"name": None}],
        "divergence": {"verdict": "unheard_of", "trades": "none"},
        "period": {"start": "not a date", "bars": float("nan")},
    }
    page = walk(render_tearsheet(report))
    assert page.tags["svg"] == 0
    assert "not a date" in "".join(page.text)


def test_time_ticks_follow_the_calendar() -> None:
    day = 86_400_000
    start = 883_699_200_000  # 1998-01-02
    decades = time_ticks(start, start + 23 * 365 * day)
    assert [label for _, label in decades][:2] == ["2000", "2005"]
    year = time_ticks(start, start + 360 * day)
    assert year[0][1] == "Mar 1998" and len(year) <= 7
    hours = time_ticks(start, start + day)
    assert all(ts % 3_600_000 == 0 for ts, _ in hours)


def test_template_ships_inside_the_package() -> None:
    template = resources.files("analytics_service") / "templates" / "tearsheet.html.j2"
    assert template.is_file()
