"""Backtest against live: one strategy version's backtest and its forward sessions, overlaid
and measured.

The live start is the first bar of the earliest session. Bars of the backtest before it are
in-sample; the backtest's bars from it on overlap the sessions, and there the two should have
traded alike (the same plan and fill model on the same bars).

- **Trades**: within the overlap, each live trade is matched to an unmatched backtest trade of
  the same side whose entry is at most `MATCH_BARS` bars away (earliest first). Unmatched trades
  on either side are listed; matched ones give the entry delay (bars) and price difference.
- **Return drift**: a session's return over its span minus the backtest's return over the
  same span (when the backtest covers it).
- **Sharpe drift**: a session's annualised Sharpe minus the backtest's in-sample Sharpe.
- **Expected range**: from the in-sample log returns (mean ``m``, standard deviation ``s``), a
  session of ``n`` bars should end within ``exp(m n ± z s sqrt(n)) - 1`` with ``z`` the normal
  quantile of the chosen confidence (95 % two-sided by default).

Where the backtest covers a session's span, the two are compared directly: the session
``diverges`` when more than `MAX_MISMATCH` of the trades in the overlap are unmatched or its
return drifts from the backtest's over the same bars by more than `MAX_RETURN_DRIFT`. Where it
does not, the session is judged by its expected range, which needs `MIN_IN_SAMPLE` in-sample
bars and a session of `MIN_LIVE` bars; it ``diverges`` when it ends outside the range. With
neither, the verdict is ``insufficient_data``; otherwise ``consistent``. Every reason is stated.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
from scipy.stats import norm

from algotrade.bars import TIMEFRAME_SECONDS
from analytics_service.analysis import Curve, curve_of, metrics_of
from analytics_service.runs import RunData

MATCH_BARS: Final = 1
MIN_IN_SAMPLE: Final = 30
MIN_LIVE: Final = 20
MAX_MISMATCH: Final = 0.2
MAX_RETURN_DRIFT: Final = 0.01
MAX_TRADE_ROWS: Final = 200


def _value_at(run: RunData, ts: int) -> float | None:
    """The run's equity at the close of the bar opened at ``ts`` or the last before it."""
    index = int(np.searchsorted(run.ts, ts, side="right")) - 1
    return float(run.equity[index]) if index >= 0 else None


def _segment(run: RunData, end: int) -> Curve:
    """The run's bars before ``end`` as a curve of their own."""
    keep = run.ts < end
    whole = curve_of(run)
    closed = run.trades.exit_ts < end
    return Curve(
        ts=run.ts[keep],
        equity=run.equity[keep],
        held=run.position[keep],
        capital=run.capital,
        periods=run.periods,
        closed_pnl=run.trades.pnl[closed],
        open_trades=0,
        traded_notional=0.0,
        trade_bars=whole.trade_bars[closed],
    )


def match_trades(backtest: RunData, live: RunData, lo: int, hi: int) -> list[dict[str, Any]]:
    """Trades entered in ``[lo, hi]`` by either run, matched as the module doc says."""
    step = TIMEFRAME_SECONDS[backtest.timeframe] * 1000
    tolerance = MATCH_BARS * step
    bt, lv = backtest.trades, live.trades
    bt_index = [i for i in np.argsort(bt.entry_ts, kind="stable") if lo <= bt.entry_ts[i] <= hi]
    used: set[int] = set()
    rows: list[dict[str, Any]] = []
    for j in np.argsort(lv.entry_ts, kind="stable"):
        entry = int(lv.entry_ts[j])
        if not lo <= entry <= hi:
            continue
        found = None
        for i in bt_index:
            if i in used or bt.side[i] != lv.side[j]:
                continue
            if abs(int(bt.entry_ts[i]) - entry) <= tolerance:
                found = i
                break
        side = "long" if lv.side[j] > 0 else "short"
        if found is None:
            rows.append(_row(None, entry, side, None, float(lv.pnl[j]), "live_only"))
            continue
        used.add(found)
        rows.append(
            {
                **_row(
                    int(bt.entry_ts[found]),
                    entry,
                    side,
                    float(bt.pnl[found]),
                    float(lv.pnl[j]),
                    "matched",
                ),
                "delay_bars": (entry - int(bt.entry_ts[found])) / step,
                "price_diff": float(lv.entry_price[j] / bt.entry_price[found] - 1.0),
            }
        )
    for i in bt_index:
        if i not in used:
            side = "long" if bt.side[i] > 0 else "short"
            rows.append(
                _row(int(bt.entry_ts[i]), None, side, float(bt.pnl[i]), None, "backtest_only")
            )
    rows.sort(key=lambda r: r["live_entry"] if r["live_entry"] is not None else r["backtest_entry"])
    return rows


def _row(
    bt_entry: int | None,
    live_entry: int | None,
    side: str,
    bt_pnl: float | None,
    live_pnl: float | None,
    status: str,
) -> dict[str, Any]:
    return {
        "backtest_entry": bt_entry,
        "live_entry": live_entry,
        "side": side,
        "pnl_backtest": bt_pnl,
        "pnl_live": live_pnl,
        "status": status,
    }


def _num(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def compare(
    backtest: RunData, sessions: Sequence[RunData], *, confidence: float = 0.95
) -> dict[str, Any]:
    """The overlay and divergence sections of a comparison report (see the module doc)."""
    live = [s for s in sessions if s.ts.shape[0] > 0]
    live_start = min((int(s.ts[0]) for s in live), default=None)
    live_curves: list[dict[str, Any]] = []
    overlay: dict[str, Any] = {
        "live_start": live_start,
        "backtest": {"ts": backtest.ts.tolist(), "equity": backtest.equity.tolist()},
        "live": live_curves,
    }
    reasons: list[str] = []
    if live_start is None:
        divergence = _verdict("insufficient_data", ["no session has applied a bar yet"])
        return {"overlay": overlay, "divergence": divergence}
    in_sample = _segment(backtest, live_start)
    n_in = in_sample.ts.shape[0]
    log_returns = np.diff(np.log(np.concatenate(([in_sample.capital], in_sample.equity))))
    mean = float(log_returns.mean()) if n_in else math.nan
    std = float(log_returns.std(ddof=1)) if n_in > 1 else math.nan
    z = float(norm.ppf(0.5 + confidence / 2))
    in_sharpe = metrics_of(in_sample).sharpe if n_in > 1 else math.nan
    rows: list[dict[str, Any]] = []
    per_session: list[dict[str, Any]] = []
    verdict = "consistent"
    enough = False
    backtest_end = int(backtest.ts[-1]) if backtest.ts.shape[0] else None
    for session in live:
        start, end = int(session.ts[0]), int(session.ts[-1])
        n = int(session.ts.shape[0])
        start_value = _value_at(backtest, start - 1)  # the backtest's equity before the span
        rebase = start_value if start_value is not None else backtest.capital
        live_curves.append(
            {
                "name": session.name,
                "ts": session.ts.tolist(),
                "equity": (session.equity / session.capital * rebase).tolist(),
            }
        )
        live_return = float(session.equity[-1] / session.capital - 1.0)
        backtest_return = None
        if backtest_end is not None and backtest_end >= end and start_value is not None:
            end_value = _value_at(backtest, end)
            backtest_return = end_value / start_value - 1.0 if end_value is not None else None
        low = high = None
        if n_in >= MIN_IN_SAMPLE and math.isfinite(std):
            low = math.exp(mean * n - z * std * math.sqrt(n)) - 1.0
            high = math.exp(mean * n + z * std * math.sqrt(n)) - 1.0
        sharpe = metrics_of(curve_of(session)).sharpe
        matched = match_trades(backtest, session, start, min(end, backtest_end or end))
        rows.extend({**r, "session": session.id} for r in matched)
        mismatches = sum(r["status"] != "matched" for r in matched)
        entry = {
            "session": session.id,
            "bars": n,
            "live_return": live_return,
            "backtest_return": backtest_return,
            "return_drift": None if backtest_return is None else live_return - backtest_return,
            "sharpe_drift": _num(sharpe - in_sharpe),
            "expected_range": None if low is None else {"low": low, "high": high},
            "trade_matches": len(matched) - mismatches,
            "trade_mismatches": mismatches,
        }
        per_session.append(entry)
        drift = entry["return_drift"]
        if drift is not None:  # the backtest covers the span: compare bar for bar
            enough = True
            if matched and mismatches / len(matched) > MAX_MISMATCH:
                verdict = "diverging"
                reasons.append(
                    f"session {session.id}: {mismatches} of {len(matched)} trades in the "
                    "overlap have no counterpart in the backtest"
                )
            if abs(drift) > MAX_RETURN_DRIFT:
                verdict = "diverging"
                reasons.append(
                    f"session {session.id} returned {live_return:.2%} where the backtest made "
                    f"{backtest_return:.2%} over the same bars"
                )
        elif n >= MIN_LIVE and low is not None and high is not None:
            enough = True
            if not low <= live_return <= high:
                verdict = "diverging"
                reasons.append(
                    f"session {session.id} returned {live_return:.2%}, outside the "
                    f"{confidence:.0%} range [{low:.2%}, {high:.2%}] the backtest's in-sample "
                    f"returns give for {n} bars"
                )
    if not enough:
        verdict = "insufficient_data"
        reasons.append(
            "the backtest does not cover any session's bars, and judging by the expected range "
            f"needs {MIN_IN_SAMPLE} in-sample backtest bars (have {n_in}) and a session of "
            f"{MIN_LIVE} bars"
        )
    elif verdict == "consistent":
        reasons.append("every session trades and returns as its backtest says it should")
    matched_rows = [r for r in rows if r["status"] == "matched"]
    drifts = [e["return_drift"] for e in per_session if e["return_drift"] is not None]
    sharpe_drifts = [e["sharpe_drift"] for e in per_session if e["sharpe_drift"] is not None]
    first_range = next((e["expected_range"] for e in per_session if e["expected_range"]), None)
    divergence = {
        **_verdict(verdict, reasons),
        "confidence": confidence,
        "in_sample_bars": n_in,
        "in_sample_sharpe": _num(in_sharpe),
        "return_drift": float(np.mean(drifts)) if drifts else None,
        "sharpe_drift": float(np.mean(sharpe_drifts)) if sharpe_drifts else None,
        "expected_range": first_range,
        "trade_matches": len(matched_rows),
        "trade_mismatches": len(rows) - len(matched_rows),
        "mean_entry_delay_bars": (
            float(np.mean([r["delay_bars"] for r in matched_rows])) if matched_rows else None
        ),
        "mean_price_diff": (
            float(np.mean([r["price_diff"] for r in matched_rows])) if matched_rows else None
        ),
        "sessions": per_session,
        "trades": rows[:MAX_TRADE_ROWS],
    }
    return {"overlay": overlay, "divergence": divergence}


def _verdict(verdict: str, reasons: list[str]) -> dict[str, Any]:
    return {"verdict": verdict, "reasons": reasons}
