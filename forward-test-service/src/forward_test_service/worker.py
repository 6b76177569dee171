"""`forward-test-service worker`: a member of the consumer group on ``market.bars.v1``.

Kafka gives each member some partitions, and so some series (a series' bars share a key, hence
a partition). For every closed bar of a series, the worker applies it to each running session
following that series (`BarApplier`), then records what happened in this order:

1. PostgreSQL, one transaction: fills, closed trades, gaps, corrections, warm-ups and failures,
   with their events staged in the outbox (inserted once: a bar applied again stages nothing);
2. Redis, one pipeline per chunk of sessions: each session's checkpoint and equity points,
   each chunk's on its way while the next is applied;
3. Kafka: ``session.equity`` (at most one per session per ``EQUITY_EVENT_SECONDS``), carrying
   every equity point since the session's previous one. The events are what users wait for:
   they go once the last chunk is applied, before its checkpoints are built (see
   `BarApplier._apply`). Points a failed send could not deliver wait for the next; a restored
   session first sends again the points Redis still holds (not yet copied to PostgreSQL), so
   a crash between a checkpoint and its event loses none of those, and a crash before the
   checkpoint is durable applies the bar again and sends its points again (consumers take a
   point twice without harm: they keep one per bar time).

The consumer runner commits the bar's offset only after the handler returned, so a bar's
effects are durable before Kafka forgets the bar. A restarted or rebalanced worker restores
each session from Redis (else from the copy in PostgreSQL, made every ``CHECKPOINT_SECONDS``
and on stop) and skips bars at or before the session's last bar time, so no bar is applied
twice. A worker also notices when a partition's records were handled elsewhere in between (an
offset that does not follow the last one it handled: the partition moved away and back) and
reloads that partition's sessions.

Gaps (an open time missing before a bar, by the session's timeframe and calendar) and
corrections (a bar for an open time already applied) are recorded on the session; no bar is
fabricated and applied history is never rewritten.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson
from aiokafka import ConsumerRecord
from pydantic import BaseModel
from sqlalchemy import Row

from algotrade import bars as bar_events
from algotrade import session_events as events
from algotrade.bars import TIMEFRAME_SECONDS, series_key
from algotrade.bus import (
    ConsumerRunner,
    ConsumerStalled,
    EventProducer,
    Headers,
    RetryPolicy,
    event_headers,
)
from algotrade.engine import Plan
from algotrade.errors import EventError
from algotrade.events import Envelope, Topics, default_registry, new_event_ids
from algotrade.service import open_resources, wait_until_ready
from algotrade.simulation import ResolvedConfig
from algotrade.simulation.live import LiveBar
from forward_test_service.agent_orders import AgentOrders, Route
from forward_test_service.agents.commands import CommandQueue, queue_policy
from forward_test_service.broker import Account, Broker, PaperBroker, live_bar
from forward_test_service.checkpoints import Checkpoint, CheckpointStore
from forward_test_service.config import Settings
from forward_test_service.models import ACTIVE, PAUSED, RUNNING, SCHEMA
from forward_test_service.store import BarRecord, Counters, SessionStore, summary_of

logger = logging.getLogger(__name__)

NAME = "forward-test-worker"
DAY_MS = 86_400_000
APPLY_CHUNK = 1_000  # sessions applied between two checkpoint writes (see `BarApplier._apply`)


# A session's figures after the last bar applied: ts, position, cash, equity, bars applied,
# warmed up.
LastBar = tuple[int, float, float, float, int, bool]


@dataclass
class LoadedSession:
    """A session a worker holds in memory between bars."""

    id: str
    user_id: str
    status: str
    account: Account
    counters: Counters
    step_ms: int
    calendar: str
    last_equity_event: float = 0.0
    dirty: bool = False  # applied bars not yet copied to PostgreSQL
    unsent: list[events.EquityPoint] = field(default_factory=list)
    """Equity points not yet sent in a ``session.equity`` (at most `UNSENT_MAX`)."""
    last: LastBar | None = None  # the figures after the last bar applied (None: none yet)
    route: Route | None = None
    """Agent mode: where the session's orders also go (`forward_test_service.agent_orders`)."""

    def meta(self, last: LastBar | None = None) -> dict[str, Any]:
        """The checkpoint's meta; ``last``, the figures after the last bar applied, saves
        asking the account again for what it just reported."""
        if last is None:
            return {**summary_of(self.account), **self.counters.as_meta()}
        ts, position, cash, equity, bars, warmed_up = last
        counters = self.counters
        return {
            "position": position,
            "cash": cash,
            "equity": equity,
            "warmed_up": warmed_up,
            "bars_applied": bars,
            "last_ts": ts,
            "fills": counters.fills,
            "trades": counters.trades,
            "gaps": counters.gaps,
            "corrections": counters.corrections,
        }


@dataclass
class Series:
    partition: int
    sessions: dict[str, LoadedSession] = field(default_factory=dict)
    # `SessionStore.series_version` when the sessions were last read; None: never read.
    version: tuple[int, int] | None = None


def missing_open_times(last_ts: int, ts: int, step_ms: int, calendar: str) -> tuple[int, int]:
    """``(first missing open time, how many)`` between two applied bars; ``(0, 0)`` when the
    market's calendar expects none. On ``24x7`` every skipped step is missing. On ``xnys``
    weekends are not, and intraday steps count only within one UTC day (nights and closed
    hours are not bars); exchange holidays are reported as gaps."""
    count = (ts - last_ts) // step_ms - 1
    if count <= 0:
        return 0, 0
    first = last_ts + step_ms
    if calendar == "24x7":
        return first, int(count)
    if step_ms < DAY_MS and last_ts // DAY_MS != ts // DAY_MS:
        return 0, 0
    missing = [t for t in range(first, ts, step_ms) if ((t // DAY_MS) + 3) % 7 < 5][:100_000]
    return (missing[0], len(missing)) if missing else (0, 0)


def correction_record(session: LoadedSession, bar: bar_events.BarEventItem, ts: int) -> BarRecord:
    """A bar for an open time already applied: recorded, never applied."""
    return BarRecord(
        session.id,
        session.user_id,
        None,
        0,
        0,
        correction={
            "ts": ts,
            "revision": bar.revision,
            "version": bar.version,
            "open": bar.open,
            "high": bar.high,
            "low": bar.low,
            "close": bar.close,
            "volume": bar.volume,
        },
    )


def advance(
    chunk: Sequence[LoadedSession],
    bars: Sequence[tuple[bar_events.BarEventItem, LiveBar]],
    broker: Broker,
    records: list[BarRecord],
) -> list[Changed]:
    """Apply ``bars`` to the sessions of ``chunk`` (each bar to all of them at once, through
    `Broker.apply_many`), appending to ``records`` what PostgreSQL must record; each session
    that changed, with what its checkpoint holds besides its account (`checkpoints_of`). A
    session that cannot go on is marked failed (alone)."""
    count = len(chunk)
    points: list[list[tuple[int, float, float]]] = [[] for _ in range(count)]
    last: list[LastBar | None] = [None] * count
    noted = [False] * count  # a correction recorded: the counters change without a bar applied
    active = list(range(count))
    for bar, live in bars:
        ts = live.ts
        applied = broker.apply_many([chunk[i].account for i in active], live)
        done, positions, equities = applied.applied, applied.position, applied.equity
        before, counted, occurred, failed = (
            applied.previous,
            applied.bars,
            applied.events,
            applied.failed,
        )
        warm, warmed_now = applied.warmed_up, applied.warmed_now
        for j, i in enumerate(active):
            session = chunk[i]
            if j in failed:
                logger.error("session %s failed: %s", session.id, failed[j])
                records.append(
                    BarRecord(session.id, session.user_id, None, 0, 0, failure=failed[j])
                )
                session.status = "failed"
                continue
            previous = before[j]
            if not done[j]:
                if bar.correction and previous is not None and ts <= previous:
                    noted[i] = True
                    session.counters.corrections += 1
                    records.append(correction_record(session, bar, ts))
                continue
            gap = None
            if previous is not None and ts - previous > session.step_ms:
                first, missing = missing_open_times(previous, ts, session.step_ms, session.calendar)
                if missing:
                    gap = (first, missing)
                    session.counters.gaps += missing
            warmed = warmed_now[j]
            if j in occurred or warmed or gap is not None:
                counters = session.counters
                outcome = applied.outcome(j)
                assert outcome is not None
                records.append(
                    BarRecord(
                        session.id,
                        session.user_id,
                        outcome,
                        counters.fills,
                        counters.trades,
                        warmed_up=warmed,
                        gap=gap,
                    )
                )
                counters.fills += len(outcome.fills)
                counters.trades += len(outcome.closed)
            equity, position = equities[j], positions[j]
            points[i].append((ts, equity, position))
            last[i] = (ts, position, applied.cash[j], equity, counted[j], warm[j])
        if failed:
            active = [i for j, i in enumerate(active) if j not in failed]
    saved = []
    for i in (i for i in range(count) if points[i] or noted[i]):
        session = chunk[i]
        unsent = session.unsent
        unsent.extend(points[i])
        if len(unsent) > UNSENT_MAX:  # the broker has been away for long: keep the newest
            del unsent[: len(unsent) - UNSENT_MAX]
        session.dirty = True
        if last[i] is not None:
            session.last = last[i]
        saved.append(Changed(session, session.meta(last[i]), points[i]))
    return saved


class Changed(NamedTuple):
    """A session a bar changed: its checkpoint's meta and new equity points."""

    session: LoadedSession
    meta: dict[str, Any]
    points: list[tuple[int, float, float]]


def checkpoints_of(broker: Broker, changed: Sequence[Changed]) -> list[Checkpoint]:
    """The checkpoints of ``changed``: their accounts' snapshots (taken now, so after a bar's
    events when the caller sends those first), meta and points."""
    snaps = broker.snapshots([c.session.account for c in changed])
    return [
        Checkpoint(c.session.id, snap, c.meta, c.points)
        for c, snap in zip(changed, snaps, strict=True)
    ]


UNSENT_MAX = 50 * events.EQUITY_POINTS_MAX
_PER_EVENT = frozenset({"id", "key", "user_id", "payload"})  # what each session.equity sets
# ``session.equity`` messages ready to send, and how many unsent points each session's carry.
EquityBatch = tuple[
    list[tuple[str, bytes, bytes | None, Headers]], list[tuple["LoadedSession", int]]
]


def equity_payload(session: LoadedSession) -> events.SessionEquity:
    account = session.account
    return events.SessionEquity(
        session_id=session.id,
        ts=int(account.last_ts or 0),
        equity=account.equity,
        cash=account.cash,
        position=account.position,
        bars_applied=account.bars_applied,
    )


def epoch_ms(moment: datetime) -> int:
    return int(moment.replace(tzinfo=moment.tzinfo or UTC).timestamp() * 1000)


class BarApplier:
    """The handler of ``market.bars``: applies each bar to the sessions of its series."""

    def __init__(
        self,
        *,
        store: SessionStore,
        checkpoints: CheckpointStore,
        broker: Broker,
        producer: EventProducer,
        topics: Topics,
        settings: Settings,
        orders: AgentOrders | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._orders = orders
        self._store = store
        self._checkpoints = checkpoints
        self._broker = broker
        self._producer = producer
        self._topics = topics
        self._settings = settings
        self._clock = clock
        self._series: dict[str, Series] = {}
        # The offset after the last record of each partition this worker handled: a record
        # that does not follow it means another member handled the ones between.
        self._next_offset: dict[int, int] = {}
        self._plans: dict[str, Plan] = {}
        self._last_copy = clock()

    @property
    def loaded(self) -> int:
        """Sessions held in memory."""
        return sum(len(s.sessions) for s in self._series.values())

    async def __call__(
        self, envelope: Envelope, payload: BaseModel, record: ConsumerRecord[Any, Any]
    ) -> None:
        if not isinstance(payload, bar_events.MarketBarsPayload):
            raise EventError(f"{envelope.type} is not a market.bars event")
        key = series_key(payload.symbol, payload.timeframe, payload.owner)
        self._follow(record.partition, record.offset)
        try:
            await self._apply(key, record.partition, payload)
        except BaseException:
            # Memory may be ahead of what was made durable: the retry reloads from Redis.
            self._series.pop(key, None)
            raise
        self._next_offset[record.partition] = record.offset + 1
        if self._clock() - self._last_copy >= self._settings.checkpoint_seconds:
            await self.copy_checkpoints()

    async def copy_checkpoints(self) -> None:
        """Copy the checkpoint of every session that applied bars since the last copy, and
        the equity points of their series, from memory and Redis to PostgreSQL."""
        self._last_copy = self._clock()
        copied = 0
        for key, series in self._series.items():
            dirty = [s for s in series.sessions.values() if s.dirty]
            if not dirty:
                continue
            pending = await self._checkpoints.pending_equity(key)
            snaps = self._broker.snapshots([s.account for s in dirty])
            await self._store.save_checkpoints(
                [(s.id, snap, s.meta()) for s, snap in zip(dirty, snaps, strict=True)],
                pending.points,
            )
            await self._checkpoints.drop_equity(key, pending)
            for s in dirty:
                s.dirty = False
            copied += len(dirty)
        if copied:
            logger.info("copied %d checkpoints to PostgreSQL", copied)

    async def _retire(self, key: str, finished: Sequence[LoadedSession]) -> None:
        """Sessions of ``key`` this worker dropped because they finished: their last
        checkpoint and the series' pending points go to PostgreSQL (an older checkpoint never
        replaces a newer one; points are kept once per bar time), then their state expires."""
        if not finished:
            return
        pending = await self._checkpoints.pending_equity(key)
        # A session that failed here may have stopped half-way through a bar: its account is
        # not copied (PostgreSQL keeps the last good checkpoint), only its points.
        kept = [s for s in finished if s.status != "failed"]
        snaps = self._broker.snapshots([s.account for s in kept])
        await self._store.save_checkpoints(
            [(s.id, snap, s.meta()) for s, snap in zip(kept, snaps, strict=True)],
            pending.points,
        )
        await self._checkpoints.drop_equity(key, pending)
        await self._checkpoints.retire(
            [s.id for s in finished], self._settings.finished_checkpoint_ttl_seconds
        )

    # ------------------------------------------------------------------ applying bars

    def _follow(self, partition: int, offset: int) -> None:
        """Forget the sessions of ``partition`` when records of it were handled elsewhere
        (the partition moved to another member and back): their checkpoints moved on."""
        expected = self._next_offset.get(partition)
        if expected is None or offset == expected:
            return
        dropped = [key for key, s in self._series.items() if s.partition == partition]
        for key in dropped:
            del self._series[key]
        logger.info(
            "partition %d resumed at offset %d, not %d: reloading %d series",
            partition,
            offset,
            expected,
            len(dropped),
        )

    async def _apply(self, key: str, partition: int, payload: bar_events.MarketBarsPayload) -> None:
        series = await self._refresh(key, partition)
        running = [s for s in series.sessions.values() if s.status == RUNNING]
        if not running:
            return
        # One LiveBar per bar, shared by every session (it is immutable).
        bars = [
            (bar, live_bar(epoch_ms(bar.ts), bar.open, bar.high, bar.low, bar.close, bar.volume))
            for bar in sorted(payload.bars, key=lambda b: b.ts)
        ]
        updates: list[LoadedSession] = []
        # Sessions go in chunks, and each chunk's checkpoints are sent to Redis while the next
        # chunk is applied: Redis writes the one while Python computes the other. Each
        # session's PostgreSQL record still precedes its checkpoint.
        writes: list[asyncio.Task[None]] = []
        try:
            for start in range(0, len(running), APPLY_CHUNK):
                records: list[BarRecord] = []
                chunk = running[start : start + APPLY_CHUNK]
                changed = advance(chunk, bars, self._broker, records)
                updates += [c.session for c in changed]
                await self._store.record(records)
                # Before the checkpoint: a crash in between re-applies and re-routes the bar.
                if self._orders is not None and any(s.route for s in chunk):
                    await self._orders.route(records, {s.id: s.route for s in chunk if s.route})
                if start + APPLY_CHUNK >= len(running):
                    # The events go before the last chunk's checkpoints are even built, and
                    # need not wait for them: a crash before the checkpoints are durable
                    # applies the bar again, which sends the same points again (consumers
                    # keep one per bar time). Sent while Redis took the checkpoints, they
                    # waited for the CPU those took (issue 12's latency).
                    await self._publish_equity(self._equity_messages(updates))
                saved = checkpoints_of(self._broker, changed)
                writes.append(asyncio.create_task(self._checkpoints.save(key, saved)))
                await asyncio.sleep(0)  # let the task hand its bytes to the socket
        finally:
            done = await asyncio.gather(*writes, return_exceptions=True)
        for result in done:
            if isinstance(result, BaseException):
                raise result
        finished = [s for s in running if s.status not in ACTIVE]
        for session in finished:
            del series.sessions[session.id]
        await self._retire(key, finished)

    def _equity_messages(self, sessions: Sequence[LoadedSession]) -> EquityBatch:
        """The ``session.equity`` messages of each session that has not sent one for a while."""
        now = self._clock()
        every = self._settings.equity_event_seconds
        due = [s for s in sessions if now - s.last_equity_event >= every]
        if not due:
            return [], []
        # The first envelope is built and validated by the registry; the others differ only
        # in id, key, user and payload, so each is written around the template's constant
        # fields, rendered once (a pydantic model, or even a dict, per session cost more than
        # the rest of the bar's bookkeeping). Only the payload goes through orjson.
        first = due[0]
        template = default_registry.build(
            events.EQUITY,
            equity_payload(first),
            producer=NAME,
            key=first.id,
            user_id=first.user_id,
        ).model_dump(mode="json")
        constant = {k: v for k, v in template.items() if k not in _PER_EVENT}
        tail = orjson.dumps(constant)[1:]  # '"type":...}': after the per-event fields
        topic = self._topics.session_events
        dumps = orjson.dumps
        size = events.EQUITY_POINTS_MAX
        ids = iter(new_event_ids(sum(max(1, -(-len(s.unsent) // size)) for s in due)))
        users: dict[str | None, bytes] = {}
        messages: list[tuple[str, bytes, bytes | None, Headers]] = []
        sent: list[tuple[LoadedSession, int]] = []
        for s in due:
            s.last_equity_event = now
            figures = s.last
            if figures is None:  # nothing applied in this worker yet: ask the account
                account = s.account
                ts = int(account.last_ts or 0)
                position, cash, equity = account.position, account.cash, account.equity
                applied = account.bars_applied
            else:
                ts, position, cash, equity, applied, _ = figures
            unsent = s.unsent
            sent.append((s, len(unsent)))
            key = s.id.encode()
            user = users.get(s.user_id)
            if user is None:
                user = users[s.user_id] = dumps(s.user_id)
            for start in range(0, max(len(unsent), 1), size):
                event_id = next(ids)
                payload = dumps(
                    {
                        "session_id": s.id,
                        "ts": ts,
                        "equity": equity,
                        "cash": cash,
                        "position": position,
                        "bars_applied": applied,
                        "points": unsent[start : start + size],
                    }
                )
                value = b'{"id":"%b","key":"%b","user_id":%b,"payload":%b,%b' % (
                    event_id.encode(),
                    key,
                    user,
                    payload,
                    tail,
                )
                messages.append((topic, value, key, event_headers(event_id, events.EQUITY, None)))
        return messages, sent

    async def _publish_equity(self, batch: EquityBatch) -> None:
        """Send `_equity_messages` directly (no state change goes with them); the points a
        failed send could not deliver wait for the session's next event."""
        messages, sent = batch
        if not messages:
            return
        try:
            await self._producer.send_many(messages)
        except Exception as exc:
            logger.warning("session.equity not published: %r", exc)
            return
        for s, count in sent:
            del s.unsent[:count]

    # ------------------------------------------------------------------ loading sessions

    async def _refresh(self, key: str, partition: int) -> Series:
        """The sessions of ``key`` as PostgreSQL has them now: new ones restored, paused and
        resumed ones updated, stopped, failed and deleted ones dropped."""
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = Series(partition)
        version = await self._store.series_version(key)
        if version == series.version:
            return series  # nothing created or changed status since the last look
        active = await self._store.active_in_series(key)
        gone = [series.sessions.pop(sid) for sid in list(series.sessions) if sid not in active]
        await self._retire(key, gone)
        new = [sid for sid in active if sid not in series.sessions]
        if new:
            await self._restore(key, series, await self._store.rows(new))
        for sid, status in active.items():
            if sid in series.sessions:
                series.sessions[sid].status = status
        # Read before the sessions: a change in between is seen again on the next bar. A
        # session that failed to restore bumped the version itself (`SessionStore.fail`).
        series.version = version
        return series

    async def _restore(self, key: str, series: Series, rows: Sequence[Row[Any]]) -> None:
        ids = [row.id for row in rows]
        stored = await self._checkpoints.load(ids)
        pending = (await self._checkpoints.pending_equity(key, ids)).points
        logger.info("restoring %d sessions of %s (%d from Redis)", len(rows), key, len(stored))
        for row in rows:
            plan = self._plans.get(row.plan_id)
            if plan is None:
                plan = self._plans[row.plan_id] = Plan.from_bytes(row.plan.encode())
            config = ResolvedConfig.model_validate(row.config)
            checkpoint = stored.get(row.id)
            if checkpoint is not None and int(checkpoint.meta.get("bars_applied", 0)) >= int(
                row.bars_applied
            ):
                data, meta = checkpoint.snapshot, checkpoint.meta
            else:
                data, meta = row.snapshot, row.summary or {}
            try:
                account = self._broker.restore(plan, config, data)
            except Exception as exc:
                logger.exception("session %s cannot be restored", row.id)
                await self._store.fail(row.id, row.user_id, f"cannot restore: {exc}")
                continue
            series.sessions[row.id] = LoadedSession(
                id=row.id,
                user_id=row.user_id,
                status=row.status if row.status in (RUNNING, PAUSED) else RUNNING,
                account=account,
                counters=Counters.from_meta(meta),
                step_ms=TIMEFRAME_SECONDS[row.timeframe] * 1000,
                calendar=config.calendar,
                # Perhaps sent before the crash, perhaps not: sent again to be sure.
                unsent=[(int(p[0]), float(p[1]), float(p[2])) for p in pending.get(row.id, ())],
                route=Route(row.user_id, row.agent_id, row.agent_symbol or row.symbol)
                if row.mode == "agent" and row.agent_id
                else None,
            )
        # Loaded sessions live long: out of the cyclic collector's sight, so that the
        # collections each bar's garbage triggers do not walk thousands of sessions every time
        # (objects freed later are still freed by reference counting).
        gc.freeze()


class Worker:
    """The composition root of a worker process: clients and the consumer."""

    def __init__(
        self,
        settings: Settings,
        *,
        broker: Broker | None = None,
        consumer_options: dict[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self._broker = broker or PaperBroker()
        self._consumer_options = consumer_options or {}
        self._stop = asyncio.Event()
        self.runner: ConsumerRunner | None = None
        self.applier: BarApplier | None = None
        # The consuming task; cancelling it is what a crash looks like to Kafka (no commit).
        self.consumer_task: asyncio.Task[None] | None = None

    async def stop(self) -> None:
        """Finish the bar in hand, commit, copy checkpoints to PostgreSQL, leave the group."""
        self._stop.set()
        if self.runner is not None:
            await self.runner.stop()

    async def run(self) -> None:
        """Consume until `stop`; a consumer that ends by itself (stalled) ends the worker."""
        async with self.running():
            stopped = asyncio.create_task(self._stop.wait())
            assert self.consumer_task is not None
            await asyncio.wait({stopped, self.consumer_task}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            if self.consumer_task.done() and not self.consumer_task.cancelled():
                self.consumer_task.result()  # raises what ended it, e.g. ConsumerStalled

    @contextlib.asynccontextmanager
    async def running(self, *, copy_on_exit: bool = True) -> AsyncIterator[BarApplier]:
        """Everything up and consuming; on exit, stops in reverse order (``copy_on_exit``:
        copy checkpoints to PostgreSQL after the consumer stopped)."""
        settings = self.settings
        async with contextlib.AsyncExitStack() as stack:
            resources = await stack.enter_async_context(
                open_resources(
                    name=NAME,
                    settings=settings,
                    uses=("postgres", "redis", "kafka"),
                    schema=SCHEMA,
                )
            )
            await wait_until_ready(resources.checks["kafka"], settings.worker_kafka_wait_seconds)
            topics = resources.topics
            producer = resources.require_producer()
            redis = resources.require_redis()
            store = SessionStore(
                resources.require_sessions(), topics, producer=NAME, relay=resources.relay
            )
            applier = BarApplier(
                store=store,
                orders=AgentOrders(
                    resources.require_sessions(),
                    CommandQueue(redis, settings.redis_prefix, queue_policy(settings)),
                    store,
                ),
                checkpoints=CheckpointStore(redis, settings.redis_prefix),
                broker=self._broker,
                producer=producer,
                topics=topics,
                settings=settings,
            )
            self.applier = applier
            runner = ConsumerRunner(
                bootstrap=settings.kafka_bootstrap,
                topics=[topics.market_bars],
                group_id=settings.worker_group_id,
                handler=applier,
                producer=producer,
                registry=default_registry,
                retry=RetryPolicy(
                    max_attempts=settings.worker_retry_attempts,
                    initial_backoff=0.2,
                    max_backoff=5.0,
                    outage_seconds=settings.worker_outage_retry_seconds,
                ),
                max_batch=settings.worker_max_batch,
                consumer_options=self._consumer_options,
                stall_seconds=settings.worker_stall_seconds,
            )
            self.runner = runner
            task = asyncio.create_task(runner.run(), name="forward-worker-consumer")
            self.consumer_task = task

            async def stop_runner() -> None:
                await runner.stop()
                # A stall has been raised by `run` already; stopping must not raise it again.
                with contextlib.suppress(asyncio.CancelledError, ConsumerStalled):
                    await task
                if copy_on_exit and not task.cancelled():
                    try:
                        await applier.copy_checkpoints()
                    except Exception:
                        logger.exception("checkpoints not copied at exit (Redis still has them)")

            stack.push_async_callback(stop_runner)
            await runner.wait_started()
            logger.info("worker consuming %s as %s", topics.market_bars, settings.worker_group_id)
            yield applier
