"""Coinbase Exchange public feed: ``matches`` trades aggregated into 1m bars, with gap repair.

Protocol (Coinbase Exchange WebSocket feed, ``wss://ws-feed.exchange.coinbase.com``): send
``{"type": "subscribe", "product_ids": [...], "channels": ["matches", "heartbeat"]}``; the
server answers ``subscriptions``, then a ``last_match`` per product (the most recent trade) and
a ``match`` per trade: ``trade_id`` (sequential per product), ``time`` (ISO-8601 UTC),
``product_id``, ``price`` and ``size`` (decimal strings), ``side``. ``heartbeat`` messages
(every second per product) carry ``time`` and ``last_trade_id``.

Bars are built on the exchange's clock: a minute is closed by the first trade or heartbeat of a
later minute. Trade ids make losses visible: a jump (after a reconnect, or in a heartbeat's
``last_trade_id``) marks every minute from the last trade seen to the current one as
incomplete; the first minute after start is incomplete too. Incomplete minutes are never
published from partial trades. When they have all closed, they are backfilled: first from
history (another writer may have them), then from the REST candles hook; minutes still missing
are recorded in ``market.gaps`` (the gap report shows them), never hidden. The connection
reconnects with exponential backoff and jitter. Closed 1m bars also update derived timeframes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import numpy as np
import numpy.typing as npt
import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidHandshake, WebSocketException

from algotrade import epoch
from algotrade.bars import TIMEFRAME_SECONDS, Bar, Bars, normalize_symbol
from market_data_service import history, models
from market_data_service.batch import BarBatch
from market_data_service.ingest import BarIngestor
from market_data_service.models import PLATFORM
from market_data_service.resample import Resampler

logger = logging.getLogger(__name__)

MINUTE = 60
SOURCE = "coinbase"
BACKFILL_SOURCE = "coinbase-rest"
DERIVED_SOURCE = "coinbase-derived"
CANDLES_PER_REQUEST = 300


def minute_of(ts: float) -> int:
    return int(ts // MINUTE) * MINUTE


# -- aggregation (pure) ------------------------------------------------------------------


@dataclass
class MinuteBar:
    minute: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    complete: bool = True

    def add(self, price: float, size: float) -> None:
        self.high = max(self.high, price)
        self.low = min(self.low, price)
        self.close = price
        self.volume += size


@dataclass(frozen=True)
class ClosedBar:
    bar: MinuteBar


@dataclass(frozen=True)
class ClosedGap:
    """Minutes ``[start, end)`` whose trades are incomplete; all of them have closed."""

    start: int
    end: int


Event = ClosedBar | ClosedGap


class MinuteAggregator:
    """Trades of one product to 1m bars on the exchange clock; tracks incomplete minutes."""

    def __init__(self, product: str, *, resume_from: int | None = None) -> None:
        self.product = product
        self.current: MinuteBar | None = None
        self.last_trade_id: int | None = None
        self.last_trade_minute: int | None = None
        self.latest_closed: int | None = None
        self._resume_from = resume_from
        self._gap: list[int] | None = None  # [first, last] incomplete minutes, inclusive

    def on_trade(self, trade_id: int, ts: float, price: float, size: float) -> list[Event]:
        if self.last_trade_id is not None and trade_id <= self.last_trade_id:
            return []  # already seen (e.g. last_match after a reconnect)
        m = minute_of(ts)
        if self.current is not None and m < self.current.minute:
            logger.warning(
                "%s: trade %d is older than the open minute; ignored", self.product, trade_id
            )
            return []
        if self.last_trade_id is None:
            first = m if self._resume_from is None else min(self._resume_from, m)
            self._mark_incomplete(first, m)
        elif trade_id > self.last_trade_id + 1:
            self._mark_incomplete(self.last_trade_minute or m, m)
        events = self._advance(m)
        if self.current is None:
            self.current = MinuteBar(m, price, price, price, price, size, not self._in_gap(m))
        else:
            self.current.add(price, size)
        self.last_trade_id = trade_id
        self.last_trade_minute = m
        return events

    def on_heartbeat(self, ts: float, last_trade_id: int | None) -> list[Event]:
        m = minute_of(ts)
        if (
            last_trade_id is not None
            and self.last_trade_id is not None
            and last_trade_id > self.last_trade_id
        ):
            # Trades we never received: everything since the last one we saw is incomplete.
            self._mark_incomplete(self.last_trade_minute or m, m)
            self.last_trade_id = last_trade_id
            self.last_trade_minute = m
        return self._advance(m)

    def _mark_incomplete(self, first: int, last: int) -> None:
        if self._gap is None:
            self._gap = [first, last]
        else:
            self._gap = [min(self._gap[0], first), max(self._gap[1], last)]
        if self.current is not None and self.current.minute >= self._gap[0]:
            self.current.complete = False

    def _in_gap(self, minute: int) -> bool:
        return self._gap is not None and self._gap[0] <= minute <= self._gap[1]

    def _advance(self, now_minute: int) -> list[Event]:
        """Close what ended before ``now_minute``."""
        events: list[Event] = []
        if self.current is not None and self.current.minute < now_minute:
            closed, self.current = self.current, None
            self.latest_closed = closed.minute
            if closed.complete:
                events.append(ClosedBar(closed))
        if self._gap is not None and self._gap[1] < now_minute:
            events.append(ClosedGap(self._gap[0], self._gap[1] + MINUTE))
            self._gap = None
            self.latest_closed = max(self.latest_closed or 0, now_minute - MINUTE)
        return events


# -- messages ----------------------------------------------------------------------------


def subscribe_message(products: list[str]) -> bytes:
    return orjson.dumps(
        {"type": "subscribe", "product_ids": products, "channels": ["matches", "heartbeat"]}
    )


def parse_time(value: Any) -> float:
    """A message's ``time`` (ISO-8601; without an offset it is UTC) as epoch seconds, to the
    millisecond."""
    if not isinstance(value, str):
        raise ValueError("time must be a string")
    return epoch.ms_from_iso(value) / epoch.MS_PER_SECOND


def positive_number(value: Any, *, allow_zero: bool) -> float:
    number = float(value)
    if not math.isfinite(number) or number < 0 or (number == 0 and not allow_zero):
        raise ValueError(f"bad number {value!r}")
    return number


# -- REST backfill -----------------------------------------------------------------------


class CandleSource(Protocol):
    """Fetches 1m candles of a product for ``[start, end)`` (epoch seconds)."""

    def __call__(self, product: str, start: int, end: int) -> Awaitable[list[Bar]]: ...


class CoinbaseCandles:
    """``GET /products/{id}/candles?granularity=60``: rows ``[time, low, high, open, close,
    volume]``, newest first, at most 300 per request."""

    def __init__(self, base_url: str, *, client: httpx.AsyncClient | None = None) -> None:
        self._base = base_url.rstrip("/")
        self._client = client

    async def __call__(self, product: str, start: int, end: int) -> list[Bar]:
        symbol = normalize_symbol(product)
        bars: dict[int, Bar] = {}
        async with contextlib.AsyncExitStack() as stack:
            client = self._client
            if client is None:
                client = await stack.enter_async_context(
                    httpx.AsyncClient(timeout=10.0, headers={"User-Agent": "algotrade-market-data"})
                )
            for lo in range(start, end, CANDLES_PER_REQUEST * MINUTE):
                hi = min(end, lo + CANDLES_PER_REQUEST * MINUTE) - MINUTE
                response = await client.get(
                    f"{self._base}/products/{product}/candles",
                    params={
                        "granularity": MINUTE,
                        "start": epoch.datetime_from_seconds(lo).isoformat(),
                        "end": epoch.datetime_from_seconds(hi).isoformat(),
                    },
                )
                response.raise_for_status()
                for row in response.json():
                    ts, low, high, open_, close, volume = row[:6]
                    ts = int(ts)
                    if start <= ts < end:
                        bars[ts] = Bar(
                            symbol,
                            "1m",
                            ts,
                            float(open_),
                            float(high),
                            float(low),
                            float(close),
                            float(volume),
                        )
        return [bars[t] for t in sorted(bars)]


# -- the provider ------------------------------------------------------------------------


@dataclass
class ProductStatus:
    product: str
    bars: int = 0
    incomplete_minutes: int = 0
    backfilled: int = 0
    gaps_recorded: int = 0


@dataclass
class ProviderStatus:
    connected: bool = False
    connections: int = 0
    reconnects: int = 0
    last_message_at: float | None = None
    last_error: str | None = None
    products: dict[str, ProductStatus] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": "coinbase",
            "connected": self.connected,
            "connections": self.connections,
            "reconnects": self.reconnects,
            "last_message_at": None
            if self.last_message_at is None
            else epoch.datetime_from_seconds(self.last_message_at).isoformat(),
            "last_error": self.last_error,
            "products": [vars(p) for p in self.products.values()],
        }


class CoinbaseProvider:
    def __init__(
        self,
        *,
        products: list[str],
        ws_url: str,
        ingestor: BarIngestor,
        sessions: async_sessionmaker[AsyncSession],
        resampler: Resampler | None,
        derive_timeframes: list[str],
        candles: CandleSource | None,
        max_backfill_minutes: int,
        reconnect_initial: float = 0.5,
        reconnect_max: float = 30.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._products = [normalize_symbol(p) for p in products]
        self._url = ws_url
        self._ingestor = ingestor
        self._sessions = sessions
        self._resampler = resampler
        self._derive = derive_timeframes
        self._candles = candles
        self._max_backfill = max_backfill_minutes * MINUTE
        self._initial = reconnect_initial
        self._max = reconnect_max
        self._sleep = sleep
        self._aggregators: dict[str, MinuteAggregator] = {}
        self._queue: asyncio.Queue[Bar] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        self._pending_derive: dict[tuple[str, str], int] = {}
        self._stored_until: dict[str, int] = {}
        self._writing = 0
        self._derive_lock = asyncio.Lock()
        self.status = ProviderStatus(products={p: ProductStatus(p) for p in self._products})

    # -- lifecycle

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[CoinbaseProvider]:
        await self._prepare()
        connection = asyncio.create_task(self.run_connection(), name="coinbase-ws")
        writer = asyncio.create_task(self._write_forever(), name="coinbase-writer")
        try:
            yield self
        finally:
            connection.cancel()
            writer.cancel()
            await asyncio.gather(connection, writer, return_exceptions=True)
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _prepare(self) -> None:
        """Resume after the last stored 1m bar, so downtime is backfilled on the first trade."""
        for product in self._products:
            resume = None
            try:
                async with self._sessions() as session:
                    latest, _ = await history.read_latest(session, PLATFORM, product, "1m", 1)
                if len(latest):
                    resume = int(latest.seconds()[-1]) + MINUTE
            except Exception as exc:  # history down: start without resuming
                logger.warning("coinbase: cannot read history to resume %s: %s", product, exc)
            self._aggregators[product] = MinuteAggregator(product, resume_from=resume)

    async def run_connection(self) -> None:
        delay = self._initial
        while True:
            try:
                async with connect(
                    self._url,
                    open_timeout=10,
                    ping_interval=20,
                    ping_timeout=20,
                    close_timeout=2,
                    max_size=1 << 20,
                ) as ws:
                    self.status.connected = True
                    self.status.connections += 1
                    await ws.send(subscribe_message(self._products).decode())
                    async for raw in ws:
                        if self._handle(raw):
                            delay = self._initial  # subscribed: the connection is healthy
            except asyncio.CancelledError:
                raise
            except (OSError, TimeoutError, WebSocketException, InvalidHandshake) as exc:
                self.status.last_error = f"{type(exc).__name__}: {exc}"[:300]
                logger.warning("coinbase feed disconnected: %s", self.status.last_error)
            finally:
                self.status.connected = False
            self.status.reconnects += 1
            await self._sleep(delay * random.uniform(0.8, 1.2))  # noqa: S311 - jitter
            delay = min(delay * 2, self._max)

    # -- messages

    def _handle(self, raw: str | bytes) -> bool:
        """Apply one feed message; True when it confirms the subscription."""
        self.status.last_message_at = time.time()
        try:
            message = orjson.loads(raw)
            kind = message.get("type")
            if kind == "subscriptions":
                return True
            if kind == "error":
                self.status.last_error = f"{message.get('message')}: {message.get('reason')}"
                logger.warning("coinbase error message: %s", self.status.last_error)
                return False
            if kind not in ("match", "last_match", "heartbeat"):
                return False
            product = normalize_symbol(message.get("product_id"))
            aggregator = self._aggregators.get(product)
            if aggregator is None:
                return False
            if kind == "heartbeat":
                last = message.get("last_trade_id")
                events = aggregator.on_heartbeat(
                    parse_time(message.get("time")), int(last) if last is not None else None
                )
            else:
                events = aggregator.on_trade(
                    int(message["trade_id"]),
                    parse_time(message.get("time")),
                    positive_number(message["price"], allow_zero=False),
                    positive_number(message["size"], allow_zero=True),
                )
        except (ValueError, TypeError, KeyError, AttributeError, orjson.JSONDecodeError) as exc:
            logger.warning("coinbase: unusable message skipped (%s): %.200r", exc, raw)
            return False
        for event in events:
            self._on_event(product, event)
        return False

    def _on_event(self, product: str, event: Event) -> None:
        status = self.status.products[product]
        if isinstance(event, ClosedBar):
            b = event.bar
            self._queue.put_nowait(
                Bar(product, "1m", b.minute, b.open, b.high, b.low, b.close, b.volume)
            )
            status.bars += 1
        else:
            status.incomplete_minutes += (event.end - event.start) // MINUTE
            self._spawn(self.backfill(product, event.start, event.end))

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- writing

    async def _write_forever(self) -> None:
        while True:
            bars = [await self._queue.get()]
            while not self._queue.empty() and len(bars) < 5000:
                bars.append(self._queue.get_nowait())
            self._writing += 1
            try:
                await self._store(bars, SOURCE)
            except Exception:
                logger.exception("coinbase: storing %d bars failed; retrying", len(bars))
                for bar in bars:
                    self._queue.put_nowait(bar)
                await self._sleep(1.0)
            finally:
                self._writing -= 1

    async def _store(self, bars: list[Bar], source: str) -> None:
        by_product: dict[str, list[Bar]] = {}
        for bar in bars:
            by_product.setdefault(bar.symbol, []).append(bar)
        for product, items in by_product.items():
            columns = Bars.from_columns(
                epoch.ms_from_seconds(np.array([b.ts for b in items], np.int64)),
                [b.open for b in items],
                [b.high for b in items],
                [b.low for b in items],
                [b.close for b in items],
                [b.volume for b in items],
            )
            valid, rejections = BarBatch.of_series(product, "1m", columns).validate()
            for rejection in rejections:
                logger.warning("coinbase: %s bar rejected: %s", product, rejection.message)
            await self._ingestor.ingest(valid, owner=PLATFORM, source=source)
            if len(valid):
                await self._derive_from(product, valid.bars.seconds())

    async def _derive_from(self, product: str, stamps: npt.NDArray[np.int64]) -> None:
        """Re-derive higher timeframes for buckets touched by ``stamps`` once they closed."""
        # Everything before the newest stored minute's end is closed (bars arrive in order).
        closed_until = max(self._stored_until.get(product, 0), int(stamps.max()) + MINUTE)
        self._stored_until[product] = closed_until
        if self._resampler is None or not self._derive:
            return
        async with self._derive_lock:
            for tf in self._derive:
                step = TIMEFRAME_SECONDS[tf]
                lo = int(stamps.min()) - int(stamps.min()) % step
                pending = self._pending_derive.pop((product, tf), None)
                if pending is not None:
                    lo = min(lo, pending)
                hi = closed_until - closed_until % step
                if lo < hi:
                    await self._resampler.derive(
                        PLATFORM, product, "1m", tf, lo, hi, source=DERIVED_SOURCE
                    )
                if int(stamps.max()) >= hi:
                    self._pending_derive[(product, tf)] = max(lo, hi)

    async def backfill(self, product: str, start: int, end: int) -> None:
        """Fill incomplete minutes ``[start, end)``: history, then REST; record the rest."""
        status = self.status.products[product]
        async with self._sessions() as session:
            present = await history.read_timestamps(session, PLATFORM, product, "1m", start, end)
        expected = np.arange(start, end, MINUTE, dtype=np.int64)
        missing = np.setdiff1d(expected, present)
        detail = "no REST candle source configured"
        if missing.size and self._candles is not None:
            fetch_from = max(int(missing[0]), end - self._max_backfill)
            try:
                candles = await self._candles(product, fetch_from, end) if fetch_from < end else []
            except Exception as exc:
                detail = f"REST backfill failed: {type(exc).__name__}: {exc}"[:500]
                candles = []
            else:
                detail = "the REST backfill had no candle for these minutes"
                if fetch_from > int(missing[0]):
                    detail += f" (older than the {self._max_backfill // MINUTE}-minute limit)"
            wanted = {int(t) for t in missing}
            fills = [c for c in candles if c.ts in wanted and c.symbol == product]
            if fills:
                await self._store(fills, BACKFILL_SOURCE)
                status.backfilled += len(fills)
                missing = np.setdiff1d(missing, np.array([c.ts for c in fills], np.int64))
        if missing.size:
            await self._record_gaps(product, missing, detail)
            status.gaps_recorded += int(missing.size)

    async def _record_gaps(self, product: str, missing: npt.NDArray[np.int64], detail: str) -> None:
        breaks = np.flatnonzero(np.diff(missing) != MINUTE) + 1
        rows = []
        for run in np.split(missing, breaks):
            rows.append(
                {
                    "symbol": product,
                    "timeframe": "1m",
                    "start_ts": epoch.datetime_from_seconds(int(run[0])),
                    "end_ts": epoch.datetime_from_seconds(int(run[-1]) + MINUTE),
                    "reason": "unfilled_after_reconnect",
                    "source": SOURCE,
                    "detail": detail,
                }
            )
        async with self._sessions() as session, session.begin():
            await session.execute(models.gaps.insert(), rows)
        logger.warning(
            "coinbase: %s has %d unfillable minute(s): %s", product, missing.size, detail
        )

    @property
    def idle(self) -> bool:
        """No bar waiting to be stored and no backfill running."""
        return not (self._tasks or self._writing or not self._queue.empty())
