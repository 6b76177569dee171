"""The Beta1 import entry point: Beta1 backtest results stored as completed backtest jobs.

`BacktestImporter.import_batch` turns each `BacktestRecord` into what a native run leaves
behind, so every read route, and the analytics service, serves it unchanged:

- a ``jobs`` row of kind ``backtest`` in status ``completed``, owned by the record's user, with
  the strategy reference when there is one; its id is a ULID of Beta1's creation time, so the
  job lists in its historical place;
- ``equity.parquet``, ``trades.parquet`` and ``summary.json`` under the job's results prefix,
  in the columns and types `BacktestResult` writes;
- the summary's ``metrics`` computed by `algotrade.metrics` from the migrated equity curve and
  trades, the way native results are, and next to them ``summary.beta1``: the figures Beta1
  itself showed (total_return, sharpe_ratio, max_drawdown, num_trades, final_capital, as Beta1
  stored them) with the record's flags, so nothing Beta1 reported is lost;
- ``backtest.completed`` staged in the outbox, as a native completion stages it.

Beta1 knew less than a native run records, and the gaps are filled as follows: there are no
bars, so the benchmark is undefined and ``position`` is derived from the trades; fees are not
known (``fees`` is 0 and ``pnl`` is Beta1's); a closed trade's ``exit_reason`` is ``unknown``;
a trade still open when Beta1 stopped is an open trade (``exit_reason`` ``end``) marked to
Beta1's pnl, or at its entry price when Beta1 had none; ``config`` is a valid
`BacktestConfig` with Beta1's capital and no costs. Each such choice is flagged.

The result objects are written before the transaction that stores the job commits (an orphan
object after a crash is harmless; a job without its files is not), and the ``legacy_ids`` row
is claimed in that same transaction first, with ``ON CONFLICT DO NOTHING``: a record already
imported, by an earlier or a concurrent run, is ``present`` and nothing is written for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import orjson
import pyarrow as pa
from sqlalchemy import Row, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from ulid import ULID

from algotrade import epoch
from algotrade.bars import MAX_TS_MS, MIN_TS_MS, SYMBOL_MAX_LENGTH, TIMEFRAME_SECONDS
from algotrade.bars import normalize_symbol as normalise_symbol
from algotrade.beta1 import (
    SOURCE,
    BacktestRecord,
    EquityPoint,
    Outcome,
    TradeRecord,
    claim,
    imported,
)
from algotrade.errors import NotFound
from algotrade.events import Topics, new_event_id
from algotrade.metrics import compute_metrics, periods_per_year
from algotrade.simulation.config import BacktestConfig, infer_timeframe
from algotrade.storage import ObjectStore
from backtesting_service.config import Settings
from backtesting_service.jobs import JobStore, job_summary
from backtesting_service.main import NAME
from backtesting_service.models import COMPLETED, jobs
from backtesting_service.models import legacy_ids as id_map
from backtesting_service.results import EQUITY, TRADES, ResultStore, parquet_bytes

KIND: Final = "backtest"
UNKNOWN_EXIT: Final = "unknown"
"""The exit reason of a closed Beta1 trade: Beta1 did not record why a trade closed."""
OPEN_EXIT: Final = "end"  # as a native run reports a position still open after the last bar
CAPITAL_MAX: Final = 1e15  # `BacktestConfig.initial_capital`'s bound
OWNER_MAX: Final = 100
STRATEGY_ID_MAX: Final = 100
WRITES_AT_ONCE: Final = 8

_TS_MS = pa.timestamp("ms", tz="UTC")
_UNITS: Final = {
    "m": 60,
    "min": 60,
    "mins": 60,
    "minute": 60,
    "minutes": 60,
    "h": 3600,
    "hr": 3600,
    "hrs": 3600,
    "hour": 3600,
    "hours": 3600,
    "d": 86_400,
    "day": 86_400,
    "days": 86_400,
    "daily": 86_400,
}
_TIMEFRAME_TEXT = re.compile(r"^(\d*)\s*([A-Za-z]+)$")

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


# ---------------------------------------------------------------------------- the importer


class BacktestImporter:
    """Stores Beta1 backtests as completed jobs, a batch per transaction.

    ``sessions`` and ``store`` are the service's database sessions and result bucket, built as
    its lifespan builds them; ``topics`` names the event topics (the Kafka topic prefix) and
    ``producer`` the envelope's producer, as the service's own completions carry it.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        store: ObjectStore,
        topics: Topics,
        *,
        producer: str = NAME,
    ) -> None:
        self._sessions = sessions
        self._results = ResultStore(store)
        self._jobs = JobStore(sessions, topics, producer=producer)

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls, settings: Settings, sessions: async_sessionmaker[AsyncSession]
    ) -> AsyncIterator[BacktestImporter]:
        """The importer on the bucket and topics ``settings`` name, as the service's lifespan
        builds them (the bucket is created if the service never ran)."""
        store = ObjectStore.from_settings(settings)
        await store.ensure_bucket()
        yield cls(sessions, store, Topics(settings.kafka_topic_prefix))

    async def import_batch(self, records: Sequence[BacktestRecord]) -> list[Outcome]:
        """One outcome per record, in order (a legacy id given twice gets the same outcome)."""
        unique: dict[str, BacktestRecord] = {}
        for record in records:
            unique.setdefault(str(record.legacy_id), record)
        async with self._sessions.begin() as session:
            outcomes = await _present(session, list(unique))
            todo = [r for legacy, r in unique.items() if legacy not in outcomes]
            built = await asyncio.to_thread(_migrate_all, todo) if todo else []
            claimed: list[MigratedBacktest] = []
            for migrated in built:
                if isinstance(migrated, Outcome):  # skipped
                    outcomes[migrated.legacy_id] = migrated
                elif await _claim(session, migrated):
                    claimed.append(migrated)
                else:  # a concurrent run claimed it first and has committed
                    outcomes.update(await _present(session, [migrated.legacy_id]))
            await self._write_results(claimed)
            for migrated in claimed:
                row = await _insert_job(session, migrated)
                # The summary as computed: JSONB would hand back a huge float as an integer.
                await self._jobs.stage_completed(session, row, migrated.row_summary)
                outcomes[migrated.legacy_id] = migrated.outcome()
        return [outcomes[str(r.legacy_id)] for r in records]

    async def inventory(self, legacy_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """What the target holds for each imported Beta1 backtest, recomputed from the job row
        and the result files: ``new_id``, ``owner_id``, ``plan_id``, ``trades`` (count),
        ``pnl`` (summed over every trade; an open one counts its mark, 0 when Beta1 had no
        pnl for it), ``final_equity`` (None without a curve), ``equity_points``, ``checksum``
        (of the stored curve and trades, as the import reported it) and ``missing`` (result
        files not found; their figures are None). Ids never imported are absent."""
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(id_map.c.legacy_id, jobs.c.id, jobs.c.user_id, jobs.c.plan_id)
                    .join(jobs, jobs.c.id == id_map.c.new_id)
                    .where(imported(id_map, KIND, legacy_ids))
                )
            ).all()
        limit = asyncio.Semaphore(WRITES_AT_ONCE)

        async def count(
            legacy: str, job_id: str, owner: str, plan_id: str | None
        ) -> tuple[str, dict[str, Any]]:
            async with limit:
                tables: dict[str, pa.Table | None] = {}
                for name in (EQUITY, TRADES):
                    try:
                        tables[name] = await self._results.table(owner, job_id, name)
                    except NotFound:
                        tables[name] = None
            entry = _inventory_entry(job_id, owner, tables[EQUITY], tables[TRADES])
            return legacy, entry | {"plan_id": plan_id}

        return dict(await asyncio.gather(*(count(*row) for row in rows)))

    async def _write_results(self, claimed: Sequence[MigratedBacktest]) -> None:
        limit = asyncio.Semaphore(WRITES_AT_ONCE)

        async def write(migrated: MigratedBacktest) -> None:
            async with limit:
                await self._results.put_backtest(
                    migrated.owner_id,
                    migrated.job_id,
                    migrated.summary,
                    migrated.equity,
                    migrated.trades,
                )

        await asyncio.gather(*(write(m) for m in claimed))


async def _present(session: AsyncSession, ids: Sequence[str]) -> dict[str, Outcome]:
    """Outcomes of the backtests an earlier (or concurrent, committed) run imported."""
    if not ids:
        return {}
    rows = await session.execute(
        select(
            id_map.c.legacy_id,
            id_map.c.new_id,
            id_map.c.checksum,
            id_map.c.flags,
        ).where(imported(id_map, KIND, ids))
    )
    return {
        legacy: Outcome(
            kind=KIND,
            legacy_id=legacy,
            state="present",
            new_id=new_id,
            flags=tuple(flags),
            checksum=checksum,
        )
        for legacy, new_id, checksum, flags in rows
    }


async def _claim(session: AsyncSession, migrated: MigratedBacktest) -> bool:
    """Record the mapping; False when another run holds it (this run then writes nothing)."""
    return await claim(
        session,
        id_map,
        KIND,
        migrated.legacy_id,
        migrated.job_id,
        migrated.flags,
        migrated.checksum,
    )


async def _insert_job(session: AsyncSession, migrated: MigratedBacktest) -> Row[Any]:
    record = migrated.record
    strategy = record.strategy
    created = migrated.created_at
    row: Row[Any] = (
        await session.execute(
            insert(jobs)
            .values(
                id=migrated.job_id,
                user_id=migrated.owner_id,
                kind=KIND,
                status=COMPLETED,
                strategy_id=strategy.strategy_id if strategy else None,
                strategy_version=strategy.version if strategy else None,
                plan_id=strategy.plan_id if strategy else None,
                symbol=migrated.symbol,
                timeframe=migrated.timeframe,
                start_at=migrated.start,
                end_at=migrated.end,
                config=migrated.config.model_dump(mode="json"),
                config_id=migrated.config.config_id,
                # What a worker would need to run it; an imported job never runs, so its
                # provenance instead.
                spec={"source": SOURCE, "legacy_id": record.legacy_id},
                progress=1.0,
                bars=migrated.equity_points,
                summary=migrated.row_summary,
                created_at=created if created is not None else func.now(),
                finished_at=created if created is not None else func.now(),
            )
            .returning(jobs)
        )
    ).one()
    return row


def _inventory_entry(
    job_id: str, owner: str, equity: pa.Table | None, trades: pa.Table | None
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "new_id": job_id,
        "owner_id": owner,
        "trades": None,
        "pnl": None,
        "final_equity": None,
        "equity_points": None,
        "checksum": None,
        "missing": [name for name, t in ((EQUITY, equity), (TRADES, trades)) if t is None],
    }
    if trades is not None:
        entry["trades"] = trades.num_rows
        entry["pnl"] = math.fsum(trades.column("pnl").to_pylist())
    if equity is not None:
        entry["equity_points"] = equity.num_rows
        if equity.num_rows:
            entry["final_equity"] = float(equity.column("equity")[-1].as_py())
    if equity is not None and trades is not None:
        entry["checksum"] = result_checksum(equity, trades)
    return entry


# ---------------------------------------------------------------------------- the mapping


@dataclass(frozen=True, slots=True)
class MigratedBacktest:
    """A Beta1 backtest as it will be stored: the job row's values and its result files."""

    record: BacktestRecord
    job_id: str
    owner_id: str
    symbol: str
    timeframe: str
    start: datetime
    end: datetime
    created_at: datetime | None
    config: BacktestConfig
    summary: dict[str, Any]  # summary.json
    equity: bytes  # equity.parquet
    trades: bytes  # trades.parquet
    equity_points: int
    trade_count: int
    checksum: str
    flags: tuple[str, ...]

    @property
    def legacy_id(self) -> str:
        return str(self.record.legacy_id)

    @property
    def row_summary(self) -> dict[str, Any]:
        """What the job row and the event keep, as for a native run, plus Beta1's figures."""
        return job_summary(self.summary) | {"beta1": self.summary["beta1"]}

    def outcome(self) -> Outcome:
        return Outcome(
            kind=KIND,
            legacy_id=self.legacy_id,
            state="migrated",
            new_id=self.job_id,
            flags=self.flags,
            checksum=self.checksum,
            detail={"trades": self.trade_count, "equity_points": self.equity_points},
        )


def _migrate_all(records: Sequence[BacktestRecord]) -> list[MigratedBacktest | Outcome]:
    return [migrate_backtest(r) for r in records]


def migrate_backtest(record: BacktestRecord) -> MigratedBacktest | Outcome:
    """The job, files and summary a Beta1 backtest becomes; a ``skipped`` outcome when it
    cannot be stored at all (no usable owner or strategy id)."""
    refusal = _refusal(record)
    if refusal is not None:
        return Outcome(
            kind=KIND,
            legacy_id=str(record.legacy_id),
            state="skipped",
            flags=tuple(record.flags),
            reason=refusal,
        )
    flags = list(record.flags)
    symbol = _symbol(record.symbol, flags)
    ts, equity = _equity_curve(record.equity, flags)
    capital = _capital(record.initial_capital, equity, flags)
    start, end = _range(record, ts, flags)
    timeframe = _timeframe(record.timeframe, ts, flags)
    trades = _trades(record.trades, ts, end, timeframe, flags)
    if not ts.size:
        flags.append("no equity curve")
    if not len(trades):
        flags.append("no trades")
    beta1 = _beta1_figures(record, flags)  # the last step that can add a flag

    config = BacktestConfig.model_validate({"initial_capital": capital, "timeframe": timeframe})
    seen = np.concatenate((ts, trades.entry_ms, trades.exit_ms))
    resolved = config.resolve(np.sort(seen))
    periods = periods_per_year(resolved.timeframe, resolved.calendar)
    position = trades.position(ts)
    metrics = compute_metrics(
        equity,
        initial_capital=capital,
        periods=periods,
        closed_pnl=np.ascontiguousarray(trades.pnl[~trades.is_open]),
        open_trades=int(np.count_nonzero(trades.is_open)),
        traded_notional=trades.notional,
        position=position,
        close=np.full(ts.shape[0], np.nan),  # Beta1 kept no bars: no benchmark
    )
    equity_table = _equity_table(ts, equity, position, capital)
    trades_table = trades.table()
    strategy = record.strategy
    summary: dict[str, Any] = {
        "plan_id": strategy.plan_id if strategy else None,
        "config_id": config.config_id,
        "config": config.model_dump(mode="json"),
        "calendar": resolved.calendar,
        "units": resolved.units,
        "timeframe": resolved.timeframe,
        "periods_per_year": periods,
        "bars": int(ts.shape[0]),
        "start": epoch.iso_from_ms(int(ts[0])) if ts.size else None,
        "end": epoch.iso_from_ms(int(ts[-1])) if ts.size else None,
        "metrics": metrics.as_dict(),
        "open_positions": trades.open_positions(),
        "trades": len(trades),
        "beta1": beta1,
    }
    return MigratedBacktest(
        record=record,
        job_id=_job_id(record.created_at),
        owner_id=record.owner_id,
        symbol=symbol,
        timeframe=timeframe,
        start=epoch.datetime_from_ms(start),
        end=epoch.datetime_from_ms(end),
        created_at=epoch.as_utc(record.created_at) if record.created_at else None,
        config=config,
        summary=summary,
        equity=parquet_bytes(equity_table),
        trades=parquet_bytes(trades_table),
        equity_points=int(ts.shape[0]),
        trade_count=len(trades),
        checksum=result_checksum(equity_table, trades_table),
        flags=tuple(flags),
    )


def _refusal(record: BacktestRecord) -> str | None:
    """Why the record cannot become a job (None: it can); anything else is stored, flagged."""
    if not record.owner_id or len(record.owner_id) > OWNER_MAX:
        return f"owner id {record.owner_id!r} is empty or longer than {OWNER_MAX} characters"
    if record.strategy is not None and len(record.strategy.strategy_id) > STRATEGY_ID_MAX:
        return f"strategy id {record.strategy.strategy_id!r} is too long"
    return None


def _capital(beta1: float, equity: FloatArray, flags: list[str]) -> float:
    """Beta1's initial capital; else the curve's first value; else `BacktestConfig`'s default,
    a placeholder (a config needs a positive capital, and returns are measured from it)."""
    if _usable_capital(beta1):
        return float(beta1)
    if equity.size and _usable_capital(float(equity[0])):
        flags.append(f"initial capital {beta1!r} unusable: the first equity value taken")
        return float(equity[0])
    default = float(BacktestConfig().initial_capital)
    flags.append(f"initial capital {beta1!r} unusable: {default:g} shown as a placeholder")
    return default


def _usable_capital(value: float) -> bool:
    return math.isfinite(value) and 0 < value <= CAPITAL_MAX


def _job_id(created_at: datetime | None) -> str:
    """A ULID of Beta1's creation time, so job lists (newest first, by id) show the migrated
    backtest where it belongs in time; a fresh one when that time is unknown or pre-1970."""
    if created_at is not None:
        moment = epoch.as_utc(created_at)
        if datetime(1970, 1, 1, tzinfo=UTC) <= moment <= datetime.now(UTC):
            return str(ULID.from_datetime(moment))
    return new_event_id()


def _in_range(ms: int | None) -> bool:
    return ms is not None and MIN_TS_MS <= ms < MAX_TS_MS


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _equity_curve(points: Sequence[EquityPoint], flags: list[str]) -> tuple[IntArray, FloatArray]:
    """The curve in time order (stable: points of one time keep Beta1's order; every point is
    kept, so the curve has as many points as Beta1's)."""
    kept = [p for p in points if _in_range(p.ts_ms) and math.isfinite(p.equity)]
    if len(kept) < len(points):
        flags.append(
            f"equity: {len(points) - len(kept)} point(s) with a time out of range or a "
            "non-finite value left out"
        )
    ts = np.array([p.ts_ms for p in kept], dtype=np.int64)
    equity = np.array([p.equity for p in kept], dtype=np.float64)
    if ts.size and np.any(np.diff(ts) < 0):
        flags.append("equity: points sorted by time")
        order = np.argsort(ts, kind="stable")
        ts, equity = ts[order], equity[order]
    return np.ascontiguousarray(ts), np.ascontiguousarray(equity)


def _range(record: BacktestRecord, ts: IntArray, flags: list[str]) -> tuple[int, int]:
    """Beta1's start and end, or where the curve, the trades or its creation time put them."""
    entries = [t.entry_ms for t in record.trades if _in_range(t.entry_ms)]
    exits = [t.exit_ms for t in record.trades if t.exit_ms is not None and _in_range(t.exit_ms)]
    created = epoch.ms_from_datetime(record.created_at) if record.created_at else None
    now = epoch.ms_from_datetime(datetime.now(UTC))
    start_candidates = (
        ("Beta1's start", record.start_ms),
        ("the first equity point", int(ts[0]) if ts.size else None),
        ("the first trade", min(entries) if entries else None),
        ("its creation time", created),
        ("the import time", now),
    )
    end_candidates = (
        ("Beta1's end", record.end_ms),
        ("the last equity point", int(ts[-1]) if ts.size else None),
        ("the last trade", max(entries + exits) if entries else None),
        ("its creation time", created),
        ("the import time", now),
    )
    chosen: list[int] = []
    for name, candidates in (("start", start_candidates), ("end", end_candidates)):
        source, value = next((s, v) for s, v in candidates if _in_range(v))
        if source != candidates[0][0]:
            flags.append(f"range: no usable {name} in Beta1, taken from {source}")
        chosen.append(int(value))  # type: ignore[arg-type]
    return chosen[0], chosen[1]


def _timeframe(raw: str, ts: IntArray, flags: list[str]) -> str:
    """Beta1's timeframe as a Beta2 one (``60m`` is ``1h``); else the curve's spacing."""
    text = raw.strip()
    if text in TIMEFRAME_SECONDS:
        return text
    match = _TIMEFRAME_TEXT.match(text)
    # "M" alone is a month in many tools: never read it as minutes.
    if match and match[2] != "M" and match[2].lower() in _UNITS:
        seconds = int(match[1] or 1) * _UNITS[match[2].lower()]
        for timeframe, length in TIMEFRAME_SECONDS.items():
            if length == seconds:
                return timeframe
    inferred = infer_timeframe(ts)
    source = "taken from the equity curve" if ts.size >= 2 else "assumed (no curve to read)"
    flags.append(f"timeframe {raw!r} has no Beta2 equivalent; {inferred!r} {source}")
    return inferred


def _symbol(raw: str, flags: list[str]) -> str:
    try:
        return normalise_symbol(raw)
    except ValueError as exc:
        kept = raw.strip()[:SYMBOL_MAX_LENGTH] or "UNKNOWN"
        flags.append(f"symbol {raw!r} kept as {kept!r}: {exc}")
        return kept


def _beta1_figures(record: BacktestRecord, flags: list[str]) -> dict[str, Any]:
    """What Beta1 reported (None where it had nothing or a non-finite number)."""
    figures: dict[str, Any] = {"legacy_id": record.legacy_id}
    for name in ("total_return", "sharpe_ratio", "max_drawdown", "final_capital"):
        value = getattr(record, name)
        if value is not None and not math.isfinite(value):
            flags.append(f"Beta1's {name} was {value!r}; kept as null")
            value = None
        figures[name] = value
    figures |= {
        "num_trades": record.num_trades,
        "initial_capital": record.initial_capital,
        "symbol": record.symbol,
        "timeframe": record.timeframe,
        "start_ms": record.start_ms,
        "end_ms": record.end_ms,
        "created_at": epoch.as_utc(record.created_at).isoformat() if record.created_at else None,
        "flags": list(flags),
    }
    return figures


@dataclass(frozen=True, slots=True, eq=False)
class _Trades:
    """Beta1's trades as columns, in entry order (the shape of a native trades table)."""

    entry_ms: IntArray
    exit_ms: IntArray
    long: npt.NDArray[np.bool_]
    quantity: FloatArray
    entry_price: FloatArray
    exit_price: FloatArray
    pnl: FloatArray
    is_open: npt.NDArray[np.bool_]
    bars_held: IntArray

    def __len__(self) -> int:
        return int(self.pnl.shape[0])

    @property
    def notional(self) -> float:
        """Notional of every fill (entries, and exits of closed trades), as native runs count."""
        closed = ~self.is_open
        return float(
            np.sum(self.quantity * self.entry_price)
            + np.sum(self.quantity[closed] * self.exit_price[closed])
        )

    def position(self, ts: IntArray) -> FloatArray:
        """Signed units held at each point: from a trade's entry up to, not including, its
        exit; an open trade to the end (the native rule, on times instead of bar indices)."""
        out = np.zeros(ts.shape[0], dtype=np.float64)
        first = np.searchsorted(ts, self.entry_ms, side="left")
        last = np.where(self.is_open, ts.shape[0], np.searchsorted(ts, self.exit_ms, side="left"))
        held = np.where(self.long, self.quantity, -self.quantity)
        for i in range(len(self)):
            out[first[i] : last[i]] += held[i]
        return out

    def open_positions(self) -> list[dict[str, Any]]:
        return [
            {
                "side": "long" if self.long[i] else "short",
                "quantity": float(self.quantity[i]),
                "entry_time": epoch.iso_from_ms(int(self.entry_ms[i])),
                "entry_price": float(self.entry_price[i]),
                "mark_price": float(self.exit_price[i]),
                "unrealized_pnl": float(self.pnl[i]),
            }
            for i in np.flatnonzero(self.is_open)
        ]

    def table(self) -> pa.Table:
        """The columns and types of `backtesting_service.backtest.result.Trades.table`."""
        return pa.table(
            {
                "entry_time": pa.array(self.entry_ms, type=pa.int64()).cast(_TS_MS),
                "exit_time": pa.array(self.exit_ms, type=pa.int64()).cast(_TS_MS),
                "side": pa.array(np.where(self.long, "long", "short").tolist(), pa.string()),
                "quantity": self.quantity,
                "entry_price": self.entry_price,
                "exit_price": self.exit_price,
                "fees": np.zeros(len(self), dtype=np.float64),  # Beta1 recorded no fees
                "pnl": self.pnl,
                "return_pct": self.pnl / (self.quantity * self.entry_price) * 100.0,
                "bars_held": self.bars_held,
                "exit_reason": pa.array(
                    np.where(self.is_open, OPEN_EXIT, UNKNOWN_EXIT).tolist(), pa.string()
                ),
                "is_open": self.is_open,
            }
        )


def _trades(
    trades: Sequence[TradeRecord], ts: IntArray, end: int, timeframe: str, flags: list[str]
) -> _Trades:
    """The trades that can be stored (positive quantity and entry price, times in range)."""
    last = int(ts[-1]) if ts.size else end  # where a trade still open is marked
    rows: list[tuple[int, int, bool, float, float, float, float, bool]] = []
    for trade in sorted(trades, key=lambda t: t.entry_ms):
        tag = f"trade {trade.legacy_id}"
        flags.extend(f"{tag}: {flag}" for flag in trade.flags)
        if not (
            _in_range(trade.entry_ms)
            and _finite(trade.quantity)
            and trade.quantity > 0
            and _finite(trade.entry_price)
            and trade.entry_price > 0
            and (trade.exit_price is None or _finite(trade.exit_price))
        ):
            flags.append(f"{tag} left out: a time out of range or an unusable quantity or price")
            continue
        sign = 1.0 if trade.side == "long" else -1.0
        if trade.exit_price is None:
            open_until = max(last, trade.entry_ms)
            if _finite(trade.pnl):
                pnl = float(trade.pnl)  # type: ignore[arg-type]
                mark = trade.entry_price + pnl / (sign * trade.quantity)
                flags.append(f"{tag} was still open: an open trade marked to Beta1's pnl")
            else:
                pnl, mark = 0.0, trade.entry_price
                flags.append(f"{tag} was still open: an open trade marked at its entry price")
            rows.append(
                (
                    trade.entry_ms,
                    open_until,
                    sign > 0,
                    trade.quantity,
                    trade.entry_price,
                    mark,
                    pnl,
                    True,
                )
            )
            continue
        exit_at = trade.exit_ms
        if exit_at is None or not _in_range(exit_at) or exit_at < trade.entry_ms:
            exit_at = max(last, trade.entry_ms)
            flags.append(f"{tag}: no usable exit time, the end of the run taken")
        if _finite(trade.pnl):
            pnl = float(trade.pnl)  # type: ignore[arg-type]
        else:
            pnl = sign * (trade.exit_price - trade.entry_price) * trade.quantity
            flags.append(f"{tag}: no pnl in Beta1, computed from its prices")
        rows.append(
            (
                trade.entry_ms,
                exit_at,
                sign > 0,
                trade.quantity,
                trade.entry_price,
                trade.exit_price,
                pnl,
                False,
            )
        )
    columns = list(zip(*rows, strict=True)) if rows else [()] * 8
    entry_ms = np.array(columns[0], dtype=np.int64)
    exit_ms = np.array(columns[1], dtype=np.int64)
    bar_ms = TIMEFRAME_SECONDS[timeframe] * 1000
    return _Trades(
        entry_ms=entry_ms,
        exit_ms=exit_ms,
        long=np.array(columns[2], dtype=np.bool_),
        quantity=np.array(columns[3], dtype=np.float64),
        entry_price=np.array(columns[4], dtype=np.float64),
        exit_price=np.array(columns[5], dtype=np.float64),
        pnl=np.array(columns[6], dtype=np.float64),
        is_open=np.array(columns[7], dtype=np.bool_),
        bars_held=(exit_ms // bar_ms - entry_ms // bar_ms).astype(np.int64),
    )


def _equity_table(
    ts: IntArray, equity: FloatArray, position: FloatArray, capital: float
) -> pa.Table:
    """The columns and types of `BacktestResult.equity_table` (drawdown from the running peak,
    the initial capital being the first)."""
    peak = np.maximum.accumulate(np.concatenate(([capital], equity)))[1:]
    return pa.table(
        {
            "ts": pa.array(ts, type=pa.int64()).cast(_TS_MS),
            "equity": equity,
            "position": position,
            "drawdown": 1.0 - equity / peak,
        }
    )


def result_checksum(equity: pa.Table, trades: pa.Table) -> str:
    """SHA-256 of the curve and the trades as stored (times in ms, floats exact), so the
    import's checksum can be recomputed from the result files."""
    content = {
        "equity": [
            equity.column("ts").cast(pa.int64()).to_pylist(),
            equity.column("equity").to_pylist(),
        ],
        "trades": [
            trades.column(name).cast(pa.int64()).to_pylist() for name in ("entry_time", "exit_time")
        ]
        + [
            trades.column(name).to_pylist()
            for name in ("side", "quantity", "entry_price", "exit_price", "pnl", "is_open")
        ],
    }
    return hashlib.sha256(orjson.dumps(content)).hexdigest()
