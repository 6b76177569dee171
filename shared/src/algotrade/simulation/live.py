"""Forward testing: a plan trading live, bar by bar, on a paper account.

A `LiveSession` runs the plan's streaming executor and the backtest's own per-bar fill rule
(`fills.step`, the body of `fills.simulate`'s loop) on every bar, so a session fed the bars of
a backtest makes exactly its trades and equity curve: same fills, fees, slippage, sizing,
stops and marks. The whole session is two float64 arrays (the executor's node state and the
account, `fills.LIVE_SLOTS`) plus two counters; `snapshot` writes them as versioned bytes and
`restore` continues from them, bit for bit.

Semantics, as in a backtest (docs/backtesting.md): a signal computed on a bar's close fills at
the next bar's open, so the orders a bar's close decides stay pending until the next `apply`
(a backtest's "a signal on the last bar never fills" is a live session's pending order).
Stops and targets rest inside the bars after the entry, the entry bar included. There is no
trading before the plan has warmed up because, as in a backtest, no signal is true before its
node's warm-up. `equity` after a bar is that bar's mark (cash plus the position at the close),
which after the last bar of a replay is the backtest's final equity.

Interface notes for the forward-test service:

- ``Fill.reason`` is ``"entry"`` for an entry, else the exit reason of `fills.EXIT_REASONS`
  (``"signal"``, ``"stop_loss"``, ``"take_profit"``, ``"trailing_stop"``), the same words a
  backtest's trades use; ``ClosedTrade.exit_reason`` likewise.
- `apply` raises `StaleBar` (a ``ValueError`` and a `BarRejected`) for a bar whose ts is not
  after the last one; `restore` raises `StateMismatch` for bytes of another plan or config, of
  another format version, or damaged.
- Live configs: `BacktestConfig.resolve_market(timeframe=..., calendar=...)`.
- Many sessions of one plan: `LiveTemplate(plan, config)` builds the executor's program once;
  its `start` and `restore` are what `LiveSession.start` and `LiveSession.restore` do.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
import orjson

from algotrade.engine import kernels
from algotrade.engine.compiler import Plan
from algotrade.engine.errors import BarRejected, StateMismatch
from algotrade.engine.streaming import Stream
from algotrade.metrics import (
    Metrics,
    assemble_tallied,
    curve_finish,
    periods_per_year,
    trade_stats_from_tally,
)
from algotrade.simulation import fills
from algotrade.simulation.config import ResolvedConfig

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

SNAPSHOT_FORMAT: Final = 1
SNAPSHOT_MAGIC: Final = b"ATLS"
# magic, format, node-state length, account length, bars applied, last ts, plan and config digests
SNAPSHOT_HEADER: Final = struct.Struct("<4sHIIQq16s16s")

# A session's two counters, in an int64 array: bars applied, and the last bar's ts (0 before
# the first bar).
COUNT_BARS: Final = 0
COUNT_LAST_TS: Final = 1

_SIGNAL_KINDS: Final = ("enter_long", "exit_long", "enter_short", "exit_short")
_RISK_KINDS: Final = ("stop_loss", "take_profit", "trailing_stop", "position_size")
_DISTANCE_UNITS: Final = {
    "percent_of_price": fills.DISTANCE_PERCENT,
    "price": fills.DISTANCE_PRICE,
}
_SIZE_UNITS: Final = {
    "quantity": fills.SIZE_FIXED,
    "percent_of_equity": fills.SIZE_PERCENT_EQUITY,
    "percent_of_equity_at_risk": fills.SIZE_RISK,
}


class StaleBar(BarRejected, ValueError):
    """A bar whose ts is not after the session's last bar (a redelivery: skip it)."""


@dataclass(frozen=True, slots=True)
class LiveBar:
    ts: int  # epoch ms, the bar's open time
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclass(frozen=True, slots=True)
class Fill:
    ts: int
    side: Literal["buy", "sell"]
    quantity: float
    price: float
    fee: float
    reason: str  # "entry" or an exit reason (`fills.EXIT_REASONS`)


@dataclass(frozen=True, slots=True)
class ClosedTrade:
    side: Literal["long", "short"]
    entry_ts: int
    exit_ts: int
    entry_price: float
    exit_price: float
    quantity: float
    pnl: float  # net of both fills' fees
    fees: float
    exit_reason: str


@dataclass(frozen=True, slots=True)
class OpenPosition:
    """The position held at the last close, as a backtest reports an open trade at the end."""

    side: Literal["long", "short"]
    entry_ts: int
    entry_price: float
    quantity: float
    entry_fee: float
    mark: float  # the last close
    pnl: float  # marked to the last close, net of the entry fee (no exit fee yet)
    stop: float  # resting exit levels, NaN when absent
    target: float
    trail: float


@dataclass(frozen=True, slots=True)
class BarOutcome:
    ts: int
    fills: tuple[Fill, ...]
    closed: tuple[ClosedTrade, ...]
    position: float  # signed units held at the close
    cash: float
    equity: float
    warmed_up: bool


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()[:16]


class LiveTemplate:
    """What every session of one plan and config shares: the executor's program, the slots
    of the plan's signal and risk outputs, the fill parameters. Immutable once built."""

    __slots__ = (
        "config",
        "config_digest",
        "initial_account",
        "initial_nodes",
        "kernel_params",
        "modes",
        "params",
        "periods",
        "plan",
        "plan_digest",
        "program",
        "risk_slots",
        "signal_slots",
        "value_slots",
        "warmup",
    )

    def __init__(self, plan: Plan, config: ResolvedConfig) -> None:
        self.plan = plan
        self.config = config
        # The streaming executor builds the program; a session keeps only its arrays.
        stream = Stream(plan)
        self.program: IntArray = stream._program
        self.kernel_params: FloatArray = stream._params
        self.initial_nodes: FloatArray = stream._state.copy()
        self.value_slots = int(stream._values.shape[0])
        slots = dict(stream._float_items) | dict(stream._bool_items)
        widest = max([1, *(len(plan.signals.get(kind, ())) for kind in _SIGNAL_KINDS)])
        signal_slots = np.full((len(_SIGNAL_KINDS), widest), -1, dtype=np.int64)
        for row, kind in enumerate(_SIGNAL_KINDS):
            for column, key in enumerate(plan.signals.get(kind, ())):
                signal_slots[row, column] = slots[key]
        self.signal_slots = signal_slots
        risk_slots = np.full(len(_RISK_KINDS), -1, dtype=np.int64)
        modes = np.zeros(fills.MODE_COUNT, dtype=np.int64)
        for index, kind in enumerate(_RISK_KINDS):
            binding = plan.risk.get(kind)
            if binding is None:
                continue
            risk_slots[index] = slots[binding.output]
            units = _SIZE_UNITS if kind == "position_size" else _DISTANCE_UNITS
            modes[index] = units[binding.unit]  # M_STOP, M_TARGET, M_TRAIL, M_SIZE in order
        self.risk_slots = risk_slots
        self.modes = modes
        settings = config.config
        params = np.zeros(fills.PARAM_COUNT, dtype=np.float64)
        params[fills.P_CAPITAL] = settings.initial_capital
        params[fills.P_FEE_RATE] = settings.fee_bps / 10_000
        params[fills.P_FEE_FIXED] = settings.fee_fixed
        params[fills.P_SLIPPAGE] = settings.slippage_bps / 10_000
        params[fills.P_FRACTIONAL] = 1.0 if config.fractional else 0.0
        params[fills.P_ALLOW_SHORT] = 1.0 if settings.allow_short else 0.0
        self.params = params
        self.initial_account: FloatArray = fills.new_live_state(settings.initial_capital)
        self.periods = periods_per_year(config.timeframe, config.calendar)
        self.warmup = plan.warmup
        self.plan_digest = bytes.fromhex(plan.plan_id)[:16]
        canonical = orjson.dumps(config.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
        self.config_digest = hashlib.sha256(canonical).digest()[:16]

    def start(self) -> LiveSession:
        """A new session, flat with the initial capital, before its first bar."""
        return LiveSession(self, self.initial_nodes.copy(), self.initial_account.copy(), 0, None)

    def unpack(self, data: bytes) -> tuple[FloatArray, FloatArray, int, int | None]:
        """A `LiveSession.snapshot`'s node state, account, bars applied and last ts, checked
        against this plan and config (`StateMismatch` when they do not fit)."""

        size = SNAPSHOT_HEADER.size
        if len(data) < size:
            raise StateMismatch("a live session snapshot is longer than that")
        magic, version, node_len, account_len, bars, last_ts, plan, config = (
            SNAPSHOT_HEADER.unpack_from(data)
        )
        if magic != SNAPSHOT_MAGIC or version != SNAPSHOT_FORMAT:
            raise StateMismatch(f"not a live session snapshot of format {SNAPSHOT_FORMAT}")
        if plan != self.plan_digest:
            raise StateMismatch("the snapshot belongs to another plan")
        if config != self.config_digest:
            raise StateMismatch("the snapshot was taken under another config")
        if node_len != self.initial_nodes.shape[0] or account_len != fills.LIVE_SLOTS:
            raise StateMismatch("the snapshot's state does not fit the plan")
        if len(data) != size + 8 * (node_len + account_len):
            raise StateMismatch("the snapshot is damaged (wrong length)")
        nodes = np.frombuffer(data, dtype="<f8", count=node_len, offset=size).copy()
        account = np.frombuffer(
            data, dtype="<f8", count=account_len, offset=size + 8 * node_len
        ).copy()
        return nodes, account, bars, last_ts if bars else None

    def restore(self, data: bytes) -> LiveSession:
        """The session `LiveSession.snapshot` saved (of this plan and config)."""
        return LiveSession(self, *self.unpack(data))


class LiveSession:
    """One plan trading on one paper account, a bar at a time (see the module docstring)."""

    __slots__ = (
        "_account",
        "_counts",
        "_fills",
        "_home",
        "_nodes",
        "_t",
        "_trades",
        "_values",
    )

    def __init__(
        self,
        template: LiveTemplate,
        nodes: FloatArray,
        account: FloatArray,
        bars_applied: int,
        last_ts: int | None,
        *,
        values: FloatArray | None = None,
        counts: IntArray | None = None,
        scratch: tuple[FloatArray, FloatArray] | None = None,
        home: tuple[Any, int] | None = None,
    ) -> None:
        """A session over the given arrays. A `algotrade.simulation.live_book.LiveBook` passes
        rows of its own (``values``, ``counts``: bars applied and last ts), its ``scratch``
        (a bar's closed trades and fills) and ``home``, its page and row (the page's
        ``free(row)`` is called when the session is gone); a session on its own allocates
        its arrays."""
        self._t = template
        self._nodes = nodes
        self._account = account
        if counts is None:
            counts = np.zeros(2, dtype=np.int64)
        counts[COUNT_BARS] = bars_applied
        counts[COUNT_LAST_TS] = last_ts if last_ts is not None else 0
        self._counts = counts
        if values is None:
            values = np.full(template.value_slots, np.nan, dtype=np.float64)
        self._values = values
        self._home = home
        if scratch is None:
            scratch = new_scratch()
        self._trades, self._fills = scratch

    def __del__(self) -> None:
        home = self._home
        if home is not None:
            home[0].free(home[1])

    @classmethod
    def start(cls, plan: Plan, config: ResolvedConfig) -> LiveSession:
        """A new session of ``plan`` (its params already applied) under ``config``."""
        return LiveTemplate(plan, config).start()

    @classmethod
    def restore(cls, plan: Plan, config: ResolvedConfig, data: bytes) -> LiveSession:
        """Continue a session from its `snapshot` (raises `StateMismatch` if it does not fit)."""
        return LiveTemplate(plan, config).restore(data)

    def apply(self, bar: LiveBar) -> BarOutcome:
        """Trade one bar; bars must come with strictly increasing ts (else `StaleBar`)."""
        ts = bar.ts
        counts = self._counts
        bars = int(counts[COUNT_BARS])
        if bars and ts <= counts[COUNT_LAST_TS]:
            raise StaleBar(f"bar ts {ts} is not after the last bar ({counts[COUNT_LAST_TS]})")
        t = self._t
        values = self._values
        values[0] = bar.open
        values[1] = bar.high
        values[2] = bar.low
        values[3] = bar.close
        values[4] = bar.volume
        kernels.run_bar(t.program, t.kernel_params, self._nodes, values, bars)
        closed, filled = fills.live_step(
            self._account,
            values,
            t.signal_slots,
            t.risk_slots,
            t.modes,
            t.params,
            float(ts),
            self._trades,
            self._fills,
        )
        bars += 1
        counts[COUNT_BARS] = bars
        counts[COUNT_LAST_TS] = ts
        account = self._account
        return BarOutcome(
            ts=ts,
            fills=tuple(fill_of(row, ts) for row in self._fills[:filled].tolist())
            if filled
            else (),
            closed=tuple(trade_of(row, ts) for row in self._trades[:closed].tolist())
            if closed
            else (),
            position=float(account[fills.S_SIDE] * account[fills.S_QUANTITY]),
            cash=float(account[fills.S_CASH]),
            equity=float(account[fills.L_CURVE + 5]),
            warmed_up=bars >= t.warmup,
        )

    def snapshot(self) -> bytes:
        """Everything needed to continue: node state, account, counters (versioned bytes)."""
        t = self._t
        bars = int(self._counts[COUNT_BARS])
        header = SNAPSHOT_HEADER.pack(
            SNAPSHOT_MAGIC,
            SNAPSHOT_FORMAT,
            self._nodes.shape[0],
            self._account.shape[0],
            bars,
            int(self._counts[COUNT_LAST_TS]) if bars else 0,
            t.plan_digest,
            t.config_digest,
        )
        return header + self._nodes.astype("<f8", copy=False).tobytes() + self._account.tobytes()

    @property
    def template(self) -> LiveTemplate:
        return self._t

    @property
    def home(self) -> tuple[Any, int] | None:
        """The `live_book.LiveBook` page and row holding this session's arrays, if any."""
        return self._home

    @property
    def last_ts(self) -> int | None:
        counts = self._counts
        return int(counts[COUNT_LAST_TS]) if counts[COUNT_BARS] else None

    @property
    def bars_applied(self) -> int:
        return int(self._counts[COUNT_BARS])

    @property
    def warmed_up(self) -> bool:
        return int(self._counts[COUNT_BARS]) >= self._t.warmup

    @property
    def position(self) -> float:
        """Signed units held at the last close."""
        return float(self._account[fills.S_SIDE] * self._account[fills.S_QUANTITY])

    @property
    def cash(self) -> float:
        return float(self._account[fills.S_CASH])

    @property
    def equity(self) -> float:
        """The last bar's mark (the initial capital before any bar)."""
        return float(self._account[fills.L_CURVE + 5])

    @property
    def mark(self) -> float | None:
        """The last bar's close (a NaN close keeps the one before); None before any close."""
        close = float(self._account[fills.S_LAST_CLOSE])
        return close if close == close else None

    @property
    def pending(self) -> tuple[bool, int]:
        """The orders the last close placed for the next open: ``(exit, entry side)``."""
        account = self._account
        return account[fills.S_PENDING_EXIT] != 0.0, int(account[fills.S_PENDING_ENTRY])

    @property
    def open_position(self) -> OpenPosition | None:
        account = self._account
        quantity = float(account[fills.S_QUANTITY])
        if quantity == 0.0:
            return None
        side = float(account[fills.S_SIDE])
        entry_price = float(account[fills.S_ENTRY_PRICE])
        entry_fee = float(account[fills.S_ENTRY_FEE])
        mark = float(account[fills.S_LAST_CLOSE])
        return OpenPosition(
            side="long" if side > 0 else "short",
            entry_ts=int(account[fills.L_ENTRY_TS]),
            entry_price=entry_price,
            quantity=quantity,
            entry_fee=entry_fee,
            mark=mark,
            pnl=side * quantity * (mark - entry_price) - entry_fee,
            stop=float(account[fills.S_STOP]),
            target=float(account[fills.S_TARGET]),
            trail=float(account[fills.S_TRAIL]),
        )

    def metrics(self) -> Metrics:
        """The metrics of the curve so far, as a backtest of the same bars reports them.

        Turnover sums the fills' notional in fill order where a backtest sums per column, so
        it may differ from the backtest's in the last bits; every other metric is identical.
        """
        account = self._account
        t = self._t
        capital = t.config.config.initial_capital
        curve = tuple(account[fills.L_CURVE : fills.L_CURVE + fills.CURVE_SLOTS].tolist())
        trades = trade_stats_from_tally(
            account[fills.L_CLOSED],
            account[fills.L_WINS],
            account[fills.L_LOSSES],
            account[fills.L_GROSS_WIN],
            account[fills.L_GROSS_LOSS],
            account[fills.L_PNL_TOTAL],
        )
        return assemble_tallied(
            curve_finish(curve, capital, t.periods),
            trades=trades,
            trade_count=int(account[fills.L_CLOSED]),
            open_trades=1 if account[fills.S_QUANTITY] > 0.0 else 0,
            traded_notional=float(account[fills.L_ENTRY_NOTIONAL] + account[fills.L_EXIT_NOTIONAL]),
            final_equity=self.equity if self._counts[COUNT_BARS] else capital,
        )


def new_scratch() -> tuple[FloatArray, FloatArray]:
    """Room for one bar's closed trades and fills (`fills.live_step`'s last two arguments)."""
    return (
        np.zeros((fills.MAX_BAR_TRADES, fills.LIVE_TRADE_COLUMNS)),
        np.zeros((fills.MAX_BAR_FILLS, fills.FILL_COLUMNS)),
    )


def fill_of(row: list[float], ts: int) -> Fill:
    return Fill(
        ts=ts,
        side="buy" if row[fills.F_DIRECTION] > 0 else "sell",
        quantity=row[fills.F_QUANTITY],
        price=row[fills.F_PRICE],
        fee=row[fills.F_FEE],
        reason=fills.FILL_REASONS[int(row[fills.F_REASON])],
    )


def trade_of(row: list[float], ts: int) -> ClosedTrade:
    return ClosedTrade(
        side="long" if row[fills.T_SIDE] > 0 else "short",
        entry_ts=int(row[fills.T_ENTRY_TS]),
        exit_ts=ts,
        entry_price=row[fills.T_ENTRY_PRICE],
        exit_price=row[fills.T_EXIT_PRICE],
        quantity=row[fills.T_QUANTITY],
        pnl=row[fills.T_PNL],
        fees=row[fills.T_FEES],
        exit_reason=fills.EXIT_REASONS[int(row[fills.T_REASON])],
    )
