"""The Beta1 import entry point: Beta1 forward-test sessions become stopped Beta2 sessions.

`SessionImporter.import_batch` writes each `algotrade.beta1.SessionRecord` as a ``stopped``
session of its owner with its closed trades (``session_trades``, ``exit_reason`` "beta1",
fees 0) and, for a trade still open when Beta1 stopped, its entry fill (``session_orders``,
reason "beta1_open", flagged) so that the position is not lost. The session, its trades and
their ``legacy_ids`` rows (kinds ``session`` and ``trade``) are written in one transaction per
batch, so a second run finds the mapping and writes nothing.

A migrated session is history: it has no compiled plan (a worker never loads it; the
``runnable`` check of `forward_test_service.models` makes sure), and no strategy when Beta1's
was not migrated (``strategy_id``, ``version`` and ``plan_id`` are NULL) or no ``plan_id`` when
it became a draft. Such a session cannot be restarted (409); one whose strategy has a plan can,
through ``POST /api/sessions/{id}/restart``, which submits it as a new session.

Its ``summary`` is the final account as Beta1 last reported it: ``cash`` and ``equity`` are
``current_capital`` (or, when Beta1 did not know it, the initial capital plus the closed trades'
pnl, flagged), ``position`` the signed quantity of the trades still open, and ``stop_reason``
"migrated" for a session Beta1 still ran (running or paused; it stops at the migration time)
or ``beta1:<status>`` otherwise; ``beta1`` keeps the Beta1 status and raw settings.

Nothing is announced on ``session.events``: the events say what a session does now, so a
migrated one would notify its owner of a "stop" that happened long ago (notification service)
and reach analytics as live activity at the migration time. So analytics has no report of a
migrated session (its trades are served here). No worker needs waking either: the row is
stopped.

Beta1 settings → execution config (`algotrade.simulation.BacktestConfig`)
--------------------------------------------------------------------------
============== ======================================================================
Beta1 key      Beta2
============== ======================================================================
commission     ``fee_bps`` = commission * 10,000: Beta1's rate is a fraction of each
               fill's notional (0.001 = 0.1 % = 10 bps); ``fee_fixed`` stays 0.
slippage       ``slippage_bps`` = slippage * 10,000 (a fraction of the price, likewise).
position_size  Beta1's fraction of the cash a trade uses. Beta2's config has no sizing
               field: a strategy without a ``position_size`` node trades all-in, which
               is Beta1's 1.0 (nothing to carry). Any other fraction is flagged as not
               carried (sizing belongs in the graph, a ``position_size`` node in
               ``percent_equity`` mode with ``percent`` = fraction * 100) and kept in
               ``summary.beta1.settings``.
(record)       ``initial_capital`` = the session's initial capital, ``timeframe`` = its
               timeframe; ``allow_short``, ``units`` and ``calendar`` keep their
               defaults.
============== ======================================================================

A number may be stored as a numeric string (``"0.001"``). A setting that is not a number, not
finite, negative, or outside the config's bounds (a rate above 0.1, 1,000 bps; a position size
not in (0, 1]) falls back to the default (0 bps; all-in) and is flagged; an unknown key is
flagged and kept in the summary. The ``auto`` fields are then resolved as a new session's are
(`forward_test_service.submission`): on the newest bars of the series the owner reads under that
symbol and timeframe (a week of them, enough to see a weekend), which also names the series'
owner. When no such series is visible the config is resolved without bars (calendar ``xnys``)
and flagged.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import orjson
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from ulid import ULID

from algotrade.bars import SYMBOL_MAX_LENGTH, TIMEFRAME_SECONDS, normalize_symbol, series_key
from algotrade.beta1 import (
    SOURCE,
    Claim,
    Outcome,
    SessionRecord,
    TradeRecord,
    claim_many,
    imported,
)
from algotrade.epoch import ms_from_datetime
from algotrade.events import new_event_id
from algotrade.simulation import BacktestConfig, ResolvedConfig
from forward_test_service import models
from forward_test_service.errors import SessionInvalid
from forward_test_service.market import MarketData
from forward_test_service.models import STOPPED, legacy_ids

SESSION: Final = "session"
TRADE: Final = "trade"
EXIT_REASON: Final = "beta1"
OPEN_REASON: Final = "beta1_open"
STILL_RUNNING: Final = ("running", "paused")
WEEK_SECONDS: Final = 7 * 86_400
MAX_RATE: Final = 0.1  # 1,000 bps, the config's bound on fee_bps and slippage_bps
RATES: Final = {"commission": "fee_bps", "slippage": "slippage_bps"}
POSITION_SIZE: Final = "position_size"

sessions_t = models.sessions
trades_t = models.session_trades
orders_t = models.session_orders


@dataclass(frozen=True)
class MappedConfig:
    """Beta1 settings as a Beta2 execution config, with what could not be read."""

    config: BacktestConfig
    flags: tuple[str, ...] = ()


def config_from_settings(
    settings: Mapping[str, Any], *, capital: float, timeframe: str
) -> MappedConfig:
    """The execution config Beta1's ``settings`` describe (see the module docstring)."""
    flags: list[str] = []
    values: dict[str, float] = {}
    for key, raw in settings.items():
        if key in RATES:
            rate = _number(raw)
            if rate is None or not 0 <= rate <= MAX_RATE:
                flags.append(
                    f"setting unreadable: {key}={raw!r} (not a fraction in [0, {MAX_RATE}]); "
                    f"{RATES[key]} is the default 0"
                )
            else:
                values[RATES[key]] = round(rate * 10_000, 9)
        elif key == POSITION_SIZE:
            size = _number(raw)
            if size is None or not 0 < size <= 1:
                flags.append(
                    f"setting unreadable: {key}={raw!r} (not a fraction in (0, 1]); "
                    "trades are all-in, the default"
                )
            elif size != 1:
                flags.append(
                    f"setting not carried: {key}={size:g}; Beta2 sizes in the strategy graph "
                    f"(a position_size node, percent_equity {size * 100:g}), this config trades "
                    "all-in"
                )
        else:
            flags.append(f"setting unknown: {key}={raw!r} (kept in summary.beta1.settings)")
    defaults = BacktestConfig()
    initial = capital
    if not (math.isfinite(capital) and 0 < capital <= 1e15):
        flags.append(
            f"initial capital {capital!r} is not a positive amount; the config keeps the "
            f"default {defaults.initial_capital:g}"
        )
        initial = defaults.initial_capital
    config = BacktestConfig(
        initial_capital=float(initial),
        fee_bps=values.get("fee_bps", defaults.fee_bps),
        slippage_bps=values.get("slippage_bps", defaults.slippage_bps),
        timeframe=timeframe,  # type: ignore[arg-type]  # one of TIMEFRAME_SECONDS
    )
    return MappedConfig(config, tuple(flags))


def _number(raw: Any) -> float | None:
    """A finite number, from a number or a numeric string; None otherwise (booleans too)."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, str):
        try:
            raw = float(raw.strip())
        except ValueError:
            return None
    if not isinstance(raw, int | float):
        return None
    value = float(raw)
    return value if math.isfinite(value) else None


LOOKUPS_AT_ONCE: Final = 8
"""Market data lookups a batch makes at once (one per series not seen before)."""


@dataclass(frozen=True)
class _Series:
    """What the market data service says of a series: its owner and newest open times."""

    found: bool
    owner: str | None = None
    ts: npt.NDArray[np.int64] = field(default_factory=lambda: np.empty(0, dtype=np.int64))


@dataclass
class _Planned:
    """One record's rows, decided before the transaction."""

    record: SessionRecord
    session_id: str
    session: dict[str, Any]
    trades: list[dict[str, Any]]
    orders: list[dict[str, Any]]
    trade_ids: list[dict[str, Any]]
    flags: list[str]
    detail: dict[str, Any]


class SessionImporter:
    """Imports Beta1 sessions, a batch per transaction.

    ``market`` is what a new session's submission reads its warm-up bars from: here it decides
    the config's ``auto`` fields and the series' owner the same way. ``max_bars`` bounds one
    read of it (the service's ``warmup_max_bars``).
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        market: MarketData,
        *,
        max_bars: int = 10_000,
    ) -> None:
        self._sessions = sessions
        self._market = market
        self._max_bars = max_bars
        self._series: dict[tuple[str, str, str], _Series] = {}

    async def import_batch(self, records: Sequence[SessionRecord]) -> list[Outcome]:
        """One outcome per record, in order: ``present`` when an earlier run imported it
        (nothing written), ``migrated``, or ``skipped`` when its timeframe has no Beta2
        counterpart."""
        ids = [r.legacy_id for r in records]
        async with self._sessions() as session:
            present = await _present(session, ids)
        outcomes: dict[int, Outcome] = {}
        planned: list[tuple[int, _Planned]] = []
        migrated_at = datetime.now(UTC)
        lookups = asyncio.Semaphore(LOOKUPS_AT_ONCE)

        async def plan_of(record: SessionRecord) -> _Planned | Outcome:
            async with lookups:  # each may ask the market data service about its series
                return await self._plan(record, migrated_at)

        todo = [(k, r) for k, r in enumerate(records) if r.legacy_id not in present]
        plans = await asyncio.gather(*(plan_of(r) for _, r in todo))
        for k, record in enumerate(records):
            if record.legacy_id in present:
                outcomes[k] = present[record.legacy_id]
        for (k, _), plan in zip(todo, plans, strict=True):
            if isinstance(plan, Outcome):
                outcomes[k] = plan
            else:
                planned.append((k, plan))
        if planned:
            async with self._sessions.begin() as session:
                saved = await _save_all(session, [plan for _, plan in planned])
            for k, plan in planned:
                outcomes[k] = saved[plan.record.legacy_id]
        return [outcomes[k] for k in range(len(records))]

    async def inventory(self, legacy_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """What the target holds for each imported Beta1 session, recomputed from its rows:
        ``new_id``, ``owner_id``, ``status``, ``stop_reason``, ``trades`` (closed, in
        ``session_trades``), ``pnl`` (their sum), ``open_trades`` (kept as entry fills only).
        A Beta1 session is accounted for when ``trades + open_trades`` is its trade count."""
        legacy = models.legacy_ids
        closed = (
            select(
                trades_t.c.session_id,
                func.count().label("n"),
                func.coalesce(func.sum(trades_t.c.pnl), 0.0).label("pnl"),
            )
            .group_by(trades_t.c.session_id)
            .subquery()
        )
        still_open = (
            select(orders_t.c.session_id, func.count().label("n"))
            .where(orders_t.c.reason == OPEN_REASON)
            .group_by(orders_t.c.session_id)
            .subquery()
        )
        query = (
            select(
                legacy.c.legacy_id,
                sessions_t.c.id,
                sessions_t.c.user_id,
                sessions_t.c.status,
                sessions_t.c.summary,
                func.coalesce(closed.c.n, 0),
                func.coalesce(closed.c.pnl, 0.0),
                func.coalesce(still_open.c.n, 0),
            )
            .join(sessions_t, sessions_t.c.id == legacy.c.new_id)
            .outerjoin(closed, closed.c.session_id == sessions_t.c.id)
            .outerjoin(still_open, still_open.c.session_id == sessions_t.c.id)
            .where(imported(legacy, SESSION, [str(i) for i in legacy_ids]))
        )
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
        return {
            legacy_id: {
                "new_id": new_id,
                "owner_id": owner,
                "status": status,
                "stop_reason": (summary or {}).get("stop_reason"),
                "trades": int(n_closed),
                "pnl": float(pnl),
                "open_trades": int(n_open),
            }
            for legacy_id, new_id, owner, status, summary, n_closed, pnl, n_open in rows
        }

    # ------------------------------------------------------------------ one record

    async def _plan(self, record: SessionRecord, migrated_at: datetime) -> _Planned | Outcome:
        flags = list(record.flags)
        timeframe = _timeframe(record.timeframe)
        if timeframe is None:
            return Outcome(
                kind=SESSION,
                legacy_id=record.legacy_id,
                state="skipped",
                flags=tuple(flags),
                reason=f"timeframe {record.timeframe!r} is none of Beta2's "
                f"({', '.join(TIMEFRAME_SECONDS)})",
            )
        try:
            symbol = normalize_symbol(record.symbol)
        except ValueError as exc:
            symbol = str(record.symbol).strip()[:SYMBOL_MAX_LENGTH]
            flags.append(f"symbol kept as Beta1 wrote it ({exc}); a restart will refuse it")
        mapped = config_from_settings(
            record.settings, capital=record.initial_capital, timeframe=timeframe
        )
        flags.extend(mapped.flags)
        series = await self._series_of(record.owner_id, symbol, timeframe)
        if not series.found:
            flags.append(
                f"no {timeframe} bars of {symbol} visible to the owner: the config is resolved "
                "without bars (calendar xnys)"
            )
        resolved: ResolvedConfig = mapped.config.resolve(series.ts)

        strategy = record.strategy
        if strategy is None:
            flags.append("strategy not migrated: the session cannot be restarted")
        elif strategy.plan_id is None:
            flags.append("strategy is a draft: the session cannot be restarted")

        still_running = record.status.strip().lower() in STILL_RUNNING
        stop_reason = "migrated" if still_running else f"beta1:{record.status}"
        created = _utc(record.started_at)
        if created is None:
            flags.append("start time unknown: created_at is the migration time")
            created = migrated_at
        stopped = None if still_running else _utc(record.stopped_at)
        if stopped is None:
            if not still_running:
                flags.append("stop time unknown: stopped_at is the migration time")
            stopped = migrated_at
        session_id = _session_id(created)

        closed = sorted(
            (t for t in record.trades if t.exit_price is not None),
            key=lambda t: (t.exit_ms if t.exit_ms is not None else t.entry_ms, t.legacy_id),
        )
        still_open = sorted(
            (t for t in record.trades if t.exit_price is None),
            key=lambda t: (t.entry_ms, t.legacy_id),
        )
        stopped_ms = ms_from_datetime(stopped)
        trades, orders, trade_ids = [], [], []
        for seq, trade in enumerate(closed, start=1):
            extra: list[str] = []
            row = _closed_trade(trade, stopped_ms, extra)
            trades.append({"session_id": session_id, "seq": seq, **row})
            trade_ids.append(_trade_id(trade, f"{session_id}/trades/{seq}", [*trade.flags, *extra]))
            flags.extend(f"trade {trade.legacy_id}: {f}" for f in extra)
        for seq, trade in enumerate(still_open, start=1):
            orders.append(
                {
                    "session_id": session_id,
                    "seq": seq,
                    "ts": int(trade.entry_ms),
                    "side": "buy" if trade.side == "long" else "sell",
                    "quantity": float(trade.quantity),
                    "price": float(trade.entry_price),
                    "fee": 0.0,
                    "reason": OPEN_REASON,
                }
            )
            note = "still open when Beta1 stopped: kept as its entry fill"
            trade_ids.append(_trade_id(trade, f"{session_id}/orders/{seq}", [*trade.flags, note]))
            flags.append(f"trade {trade.legacy_id}: {note} (order {seq})")

        realised = sum(t["pnl"] for t in trades)
        equity = record.current_capital
        if equity is None or not math.isfinite(equity):
            flags.append(
                "current capital unknown: cash and equity are the initial capital plus the "
                "closed trades' pnl"
            )
            equity = record.initial_capital + realised
        position = sum(
            float(t.quantity) if t.side == "long" else -float(t.quantity) for t in still_open
        )
        summary = {
            "position": position,
            "cash": float(equity),
            "equity": float(equity),
            "warmed_up": False,
            "bars_applied": 0,
            "last_ts": None,
            "fills": len(orders),
            "trades": len(trades),
            "gaps": 0,
            "corrections": 0,
            "stop_reason": stop_reason,
            "beta1": {
                "legacy_id": record.legacy_id,
                "status": record.status,
                "settings": _jsonable(record.settings),
                "series_found": series.found,
            },
        }
        capital = record.initial_capital if math.isfinite(record.initial_capital) else 0.0
        values = {
            "id": session_id,
            "user_id": record.owner_id,
            "status": STOPPED,
            "strategy_id": strategy.strategy_id if strategy else None,
            "strategy_version": strategy.version if strategy else None,
            "plan_id": strategy.plan_id if strategy else None,
            "plan": None,
            "params": {},
            "symbol": symbol,
            "timeframe": timeframe,
            "owner": series.owner or "",
            "series_key": series_key(symbol, timeframe, series.owner),
            "config": resolved.model_dump(mode="json"),
            "config_id": mapped.config.config_id,
            "capital": float(capital),
            "mode": "paper",
            "warmup": 0,
            "revision": models.revision_seq.next_value(),
            "bars_applied": 0,
            "summary": summary,
            "created_at": created,
            "updated_at": migrated_at,
            "stopped_at": stopped,
        }
        return _Planned(
            record=record,
            session_id=session_id,
            session=values,
            trades=trades,
            orders=orders,
            trade_ids=trade_ids,
            flags=flags,
            detail={
                "trades": len(trades),
                "open_trades": len(orders),
                "stop_reason": stop_reason,
                "runnable": strategy is not None and strategy.plan_id is not None,
            },
        )

    async def _series_of(self, owner_id: str, symbol: str, timeframe: str) -> _Series:
        """The series ``owner_id`` reads as ``symbol``, as a submission would find it (asked
        once per importer)."""
        key = (owner_id, symbol, timeframe)
        if key not in self._series:
            wanted = min(self._max_bars, WEEK_SECONDS // TIMEFRAME_SECONDS[timeframe] + 1)
            try:
                latest = await self._market.latest(owner_id, symbol, timeframe, wanted, None)
            except SessionInvalid:  # the market data service refused the name
                latest = None
            if latest is None or len(latest.bars) == 0:
                self._series[key] = _Series(found=False)
            else:
                ts = np.asarray(latest.bars.ts, dtype=np.int64)
                self._series[key] = _Series(found=True, owner=latest.owner, ts=ts)
        return self._series[key]


async def _present(session: AsyncSession, ids: Sequence[str]) -> dict[str, Outcome]:
    """Outcomes of the sessions an earlier run imported."""
    if not ids:
        return {}
    rows = await session.execute(
        select(legacy_ids.c.legacy_id, legacy_ids.c.new_id, legacy_ids.c.flags).where(
            imported(legacy_ids, SESSION, ids)
        )
    )
    return {
        legacy: Outcome(
            kind=SESSION, legacy_id=legacy, state="present", new_id=new_id, flags=tuple(flags)
        )
        for legacy, new_id, flags in rows
    }


async def _save_all(session: AsyncSession, plans: Sequence[_Planned]) -> dict[str, Outcome]:
    """Claim every Beta1 id, then write the sessions this run holds with their trades, orders
    and trade ids, each table in one statement."""
    first: dict[str, _Planned] = {}
    for plan in plans:  # the same Beta1 id twice in a batch: the first is the one written
        first.setdefault(plan.record.legacy_id, plan)
    claimed = await claim_many(
        session,
        legacy_ids,
        SESSION,
        [Claim(legacy, plan.session_id, plan.flags) for legacy, plan in first.items()],
    )
    mine = [plan for legacy, plan in first.items() if legacy in claimed]
    if mine:
        # Multi-row VALUES, not executemany: a row's revision is a SQL expression (nextval).
        await session.execute(sessions_t.insert().values([plan.session for plan in mine]))
        for rows, table in (
            ([t for plan in mine for t in plan.trades], trades_t),
            ([o for plan in mine for o in plan.orders], orders_t),
        ):
            if rows:
                await session.execute(table.insert(), rows)
        trade_ids = [t for plan in mine for t in plan.trade_ids]
        if trade_ids:
            # A Beta1 trade id met twice keeps its first mapping.
            await session.execute(pg_insert(legacy_ids).on_conflict_do_nothing(), trade_ids)
    outcomes = {
        plan.record.legacy_id: Outcome(
            kind=SESSION,
            legacy_id=plan.record.legacy_id,
            state="migrated",
            new_id=plan.session_id,
            flags=tuple(plan.flags),
            detail=plan.detail,
        )
        for plan in mine
    }
    taken = [legacy for legacy in first if legacy not in claimed]
    if taken:  # a concurrent run got there first
        outcomes.update(await _present(session, taken))
    return outcomes


def _closed_trade(trade: TradeRecord, stopped_ms: int, flags: list[str]) -> dict[str, Any]:
    assert trade.exit_price is not None
    exit_ms = trade.exit_ms
    if exit_ms is None:
        flags.append("exit time unknown: the session's stop time")
        exit_ms = stopped_ms
    pnl = trade.pnl
    if pnl is None or not math.isfinite(pnl):
        move = trade.exit_price - trade.entry_price
        pnl = (move if trade.side == "long" else -move) * trade.quantity
        flags.append("pnl unknown: computed from the prices and quantity")
    return {
        "side": trade.side,
        "entry_ts": int(trade.entry_ms),
        "exit_ts": int(exit_ms),
        "entry_price": float(trade.entry_price),
        "exit_price": float(trade.exit_price),
        "quantity": float(trade.quantity),
        "pnl": float(pnl),
        "fees": 0.0,
        "exit_reason": EXIT_REASON,
    }


def _trade_id(trade: TradeRecord, new_id: str, flags: list[str]) -> dict[str, Any]:
    return {
        "source": SOURCE,
        "kind": TRADE,
        "legacy_id": str(trade.legacy_id),
        "new_id": new_id,
        "flags": flags,
    }


def _timeframe(raw: str) -> str | None:
    """Beta2's name of Beta1's timeframe (``1H``, ``60m`` and ``1h`` are one), else None."""
    text = str(raw).strip().lower()
    if text in TIMEFRAME_SECONDS:
        return text
    units = {"m": 60, "min": 60, "h": 3_600, "hr": 3_600, "d": 86_400, "day": 86_400}
    digits = text.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = text[len(digits) :]
    if not digits.isdigit() or unit not in units:
        return None
    seconds = int(digits) * units[unit]
    return next((tf for tf, s in TIMEFRAME_SECONDS.items() if s == seconds), None)


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _session_id(created: datetime) -> str:
    """A ULID of the session's start, so that migrated sessions list where they began (ids
    order the session list)."""
    try:
        return str(ULID.from_datetime(created))
    except (ValueError, OverflowError):  # before 1970: no ULID time
        return new_event_id()


def _jsonable(value: Any) -> Any:
    """``value`` as JSONB takes it (NaN and infinities become null)."""
    return orjson.loads(orjson.dumps(value, default=str))
