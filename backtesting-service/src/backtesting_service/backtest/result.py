"""`BacktestResult`: trades, equity curve, positions and metrics of one run, and their files.

The Parquet tables (`equity_table`, `trades_table`) and the JSON summary are what the
backtesting service stores in S3; `to_bytes` is a canonical serialisation used to prove runs
are deterministic. For research, `BacktestResult.to_pandas`, `Trades.to_pandas` and
`Metrics.to_pandas` give pandas objects indexed by UTC time; pandas (the ``algotrade[pandas]``
extra) is imported only when one of them is called.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import orjson
import pyarrow as pa

from algotrade import epoch
from algotrade.metrics import Metrics
from algotrade.simulation.config import ResolvedConfig
from algotrade.simulation.fills import (
    EXIT_END,
    EXIT_REASONS,
    T_ENTRY_INDEX,
    T_ENTRY_PRICE,
    T_EXIT_INDEX,
    T_EXIT_PRICE,
    T_FEES,
    T_PNL,
    T_QUANTITY,
    T_REASON,
    T_SIDE,
    positions,
)

if TYPE_CHECKING:
    import pandas as pd

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_REASON_NAMES = np.array(EXIT_REASONS, dtype=object)
_REASON_LIST = list(EXIT_REASONS)
_TS_MS = pa.timestamp("ms", tz="UTC")


@dataclass(frozen=True, slots=True, eq=False)
class Trades:
    """Trades as columns, in entry order. Indices are bar indices into the run's bars.

    ``records`` keeps `fills.simulate`'s rows (positions are derived from them on demand).
    """

    entry_index: IntArray
    exit_index: IntArray
    entry_ts: IntArray
    exit_ts: IntArray
    side: npt.NDArray[np.int8]  # +1 long, -1 short
    quantity: FloatArray
    entry_price: FloatArray
    exit_price: FloatArray
    fees: FloatArray
    pnl: FloatArray
    reason: npt.NDArray[np.int8]  # index into `EXIT_REASONS`
    records: FloatArray

    @classmethod
    def from_records(cls, records: FloatArray, ts: IntArray) -> Trades:
        entry = records[:, T_ENTRY_INDEX].astype(np.int64)
        exit_ = records[:, T_EXIT_INDEX].astype(np.int64)
        return cls(
            entry_index=entry,
            exit_index=exit_,
            entry_ts=ts[entry],
            exit_ts=ts[exit_],
            side=records[:, T_SIDE].astype(np.int8),
            quantity=records[:, T_QUANTITY].copy(),
            entry_price=records[:, T_ENTRY_PRICE].copy(),
            exit_price=records[:, T_EXIT_PRICE].copy(),
            fees=records[:, T_FEES].copy(),
            pnl=records[:, T_PNL].copy(),
            reason=records[:, T_REASON].astype(np.int8),
            records=records,
        )

    def __len__(self) -> int:
        return int(self.pnl.shape[0])

    @property
    def is_open(self) -> npt.NDArray[np.bool_]:
        """Still open at the end (marked to the last close; no exit fee)."""
        out: npt.NDArray[np.bool_] = self.reason == EXIT_END
        return out

    @property
    def bars_held(self) -> IntArray:
        return self.exit_index - self.entry_index

    @property
    def return_pct(self) -> FloatArray:
        """Net P&L as a percent of the entry notional."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.pnl / (self.quantity * self.entry_price) * 100.0

    @property
    def notional(self) -> float:
        """Notional of every fill (entries, and exits of closed trades)."""
        entries = float(np.sum(self.quantity * self.entry_price))
        closed = ~self.is_open
        exits = float(np.sum(self.quantity[closed] * self.exit_price[closed]))
        return entries + exits

    def table(self) -> pa.Table:
        return pa.table(
            {
                "entry_time": pa.array(self.entry_ts, type=pa.int64()).cast(_TS_MS),
                "exit_time": pa.array(self.exit_ts, type=pa.int64()).cast(_TS_MS),
                "side": pa.array(np.where(self.side > 0, "long", "short").tolist(), pa.string()),
                "quantity": self.quantity,
                "entry_price": self.entry_price,
                "exit_price": self.exit_price,
                "fees": self.fees,
                "pnl": self.pnl,
                "return_pct": self.return_pct,
                "bars_held": self.bars_held,
                "exit_reason": pa.array(_REASON_NAMES[self.reason].tolist(), pa.string()),
                "is_open": self.is_open,
            }
        )

    def to_pandas(self) -> pd.DataFrame:
        """The trades as a DataFrame, one row per trade in entry order (columns of `table`).

        Times are ``datetime64[ms, UTC]``; ``side`` (long/short) and ``exit_reason`` are
        categoricals; prices, quantity, fees, pnl and return_pct float64; ``entry_index`` and
        ``exit_index`` (bar indices into the run's bars) and ``bars_held`` int64; ``is_open``
        bool.
        """
        import pandas as pd

        def utc(ts: IntArray) -> pd.DatetimeIndex:
            return epoch.pandas_index_from_ms(ts, name=None).as_unit("ms")

        return pd.DataFrame(
            {
                "entry_time": utc(self.entry_ts),
                "exit_time": utc(self.exit_ts),
                "side": pd.Categorical.from_codes(
                    (self.side < 0).astype(np.int8), categories=["long", "short"]
                ),
                "quantity": self.quantity.copy(),
                "entry_price": self.entry_price.copy(),
                "exit_price": self.exit_price.copy(),
                "fees": self.fees.copy(),
                "pnl": self.pnl.copy(),
                "return_pct": self.return_pct,
                "entry_index": self.entry_index.copy(),
                "exit_index": self.exit_index.copy(),
                "bars_held": self.bars_held,
                "exit_reason": pd.Categorical.from_codes(self.reason, categories=_REASON_LIST),
                "is_open": self.is_open,
            },
            index=pd.RangeIndex(len(self), name="trade"),
        )


def trade_rows(table: pa.Table) -> list[dict[str, Any]]:
    """Rows of a trades table (as written by `Trades.table`) as JSON-ready dicts."""
    rows: list[dict[str, Any]] = table.to_pylist()
    for row in rows:
        for key in ("entry_time", "exit_time"):
            row[key] = row[key].isoformat().replace("+00:00", "Z")
    return rows


@dataclass(frozen=True, slots=True, eq=False)
class BacktestResult:
    """Everything one backtest produced. Arrays cover the simulated bars only (bars
    ``start`` onwards; ``ts`` is a view of the bars' own timestamps)."""

    plan_id: str
    config: ResolvedConfig
    periods_per_year: float
    start: int
    ts: IntArray
    equity: FloatArray
    trades: Trades
    metrics: Metrics

    @property
    def position(self) -> FloatArray:
        """Signed units held at each bar's close."""
        out: FloatArray = positions(self.start, self.start + len(self.ts), self.trades.records)
        return out

    @property
    def drawdown(self) -> FloatArray:
        """1 - equity / running peak (the initial capital is the first peak)."""
        peak = np.maximum.accumulate(
            np.concatenate(([self.config.config.initial_capital], self.equity))
        )[1:]
        out: FloatArray = 1.0 - self.equity / peak
        return out

    def summary(self) -> dict[str, Any]:
        """JSON-ready description: config, resolution of ``auto`` fields, span, metrics."""
        config = self.config
        open_positions = [
            {
                "side": "long" if self.trades.side[i] > 0 else "short",
                "quantity": float(self.trades.quantity[i]),
                "entry_time": epoch.iso_from_ms(int(self.trades.entry_ts[i])),
                "entry_price": float(self.trades.entry_price[i]),
                "mark_price": float(self.trades.exit_price[i]),
                "unrealized_pnl": float(self.trades.pnl[i]),
            }
            for i in np.flatnonzero(self.trades.is_open)
        ]
        return {
            "plan_id": self.plan_id,
            "config_id": config.config.config_id,
            "config": config.config.model_dump(mode="json"),
            "calendar": config.calendar,
            "units": config.units,
            "timeframe": config.timeframe,
            "periods_per_year": self.periods_per_year,
            "bars": int(self.ts.shape[0]),
            "start": epoch.iso_from_ms(int(self.ts[0])) if self.ts.size else None,
            "end": epoch.iso_from_ms(int(self.ts[-1])) if self.ts.size else None,
            "metrics": self.metrics.as_dict(),
            "open_positions": open_positions,
        }

    def equity_table(self) -> pa.Table:
        return pa.table(
            {
                "ts": pa.array(self.ts, type=pa.int64()).cast(_TS_MS),
                "equity": self.equity,
                "position": self.position,
                "drawdown": self.drawdown,
            }
        )

    def trades_table(self) -> pa.Table:
        return self.trades.table()

    def to_pandas(self) -> pd.DataFrame:
        """The equity curve as a DataFrame indexed by UTC bar-open time (``ts``).

        Columns as in `equity_table`: ``equity``, ``position`` (signed units at the close) and
        ``drawdown``, all float64. ``result.to_pandas()["equity"]`` is the curve as a Series;
        trades and metrics have their own ``to_pandas``.
        """
        import pandas as pd

        return pd.DataFrame(
            {"equity": self.equity.copy(), "position": self.position, "drawdown": self.drawdown},
            index=epoch.pandas_index_from_ms(self.ts),
        )

    def to_bytes(self) -> bytes:
        """Canonical bytes of the whole result (summary JSON, then every array's raw bytes)."""
        parts = [orjson.dumps(self.summary(), option=orjson.OPT_SORT_KEYS)]
        arrays: list[npt.NDArray[Any]] = [self.ts, self.equity, self.position]
        trades = self.trades
        arrays += [
            trades.entry_index,
            trades.exit_index,
            trades.side,
            trades.quantity,
            trades.entry_price,
            trades.exit_price,
            trades.fees,
            trades.pnl,
            trades.reason,
        ]
        parts += [np.ascontiguousarray(a).tobytes() for a in arrays]
        return b"".join(len(p).to_bytes(8, "little") + p for p in parts)
