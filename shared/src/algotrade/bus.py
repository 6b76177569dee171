"""Kafka bus: an idempotent producer and a consumer runner with explicit error policy.

Policy, in one place (compare quix-streams' error callbacks):

- A message that is not a valid event (`EventError`) goes to ``<topic>.dlq`` at once: retrying
  cannot fix its bytes.
- A handler error is retried ``RetryPolicy.max_attempts`` times with exponential backoff, then
  the runner gives up: ``on_give_up`` (if given) records the failure where users see it, the
  message goes to the DLQ carrying the error and the original bytes, and the partition moves
  on. A poison message never blocks its partition. This is the one retry/give-up policy: a
  handler raises, and never counts attempts itself.
- An error that means a dependency could not be reached (`algotrade.outages`) is not the
  message's fault: for ``RetryPolicy.outage_seconds`` after its first try, such failures are
  retried without counting as attempts, so that a database or service restarting does not
  fail the work. The partition waits meanwhile, for that long at most.
- An event id the `Deduplicator` has seen is skipped (at-least-once delivery, exactly-once effect).
- Offsets are committed only after the handler succeeded or the DLQ write was acknowledged.
  If the DLQ itself cannot be written, nothing is committed and the runner seeks back and tries
  again later: a message is never dropped silently.
- A rebalance can take a partition away while its message is in the handler. The runner then
  stops working on that partition's batch, and a commit that fails because of the move (or a
  broker outage) is logged, not raised: the next owner resumes from the last committed offset
  and skips what was already applied. An offset past an unfinished message is never committed.
- A consumer that cannot reach Kafka when it starts keeps trying, with the retry backoff, until
  it joins or is stopped: a worker restarted while the broker restarts must not wait for a
  consumer that gave up. `ConsumerRunner.wait_started` returns once it joined or `run` ended.
- `ConsumerRunner.stop` finishes the in-flight message, commits, then leaves the group.
- With a ``batch_handler``, the valid messages a fetch brought for one partition are handed to
  it at once (one transaction for many events, say). If it raises, nothing of the batch is
  assumed done and every message goes through the per-message path above, with its retries
  and DLQ: a batch handler must therefore be all-or-nothing, and the per-message handler
  must apply what it would.

Every log line names topic, partition and offset.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiokafka import (
    AIOKafkaConsumer,
    AIOKafkaProducer,
    ConsumerRebalanceListener,
    ConsumerRecord,
    TopicPartition,
)
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from aiokafka.structs import RecordMetadata
from pydantic import BaseModel

from algotrade.background import stop_task
from algotrade.errors import EventError
from algotrade.events import Envelope, EventRegistry, Topics
from algotrade.outages import unreachable

logger = logging.getLogger(__name__)

Headers = Sequence[tuple[str, bytes]]
PARTITION_CACHE_KEYS = 200_000  # keys whose partition `EventProducer.send_many` remembers


class EventProducer:
    """aiokafka producer with acks=all and idempotence, sending `Envelope`s or raw bytes."""

    def __init__(self, bootstrap: str, *, client_id: str) -> None:
        self._bootstrap = bootstrap
        self._client_id = client_id
        self._producer: AIOKafkaProducer | None = None
        # Per topic: its partitions when last seen, and each key's partition under them.
        self._partitions: dict[str, tuple[frozenset[int], dict[bytes, int]]] = {}

    async def start(self) -> None:
        """Connect; a failed attempt leaves no half-started client behind, so retry freely."""
        producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            client_id=self._client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=2,
            # Up to 512 KiB per partition per request: a worker's burst of session events
            # goes in one round trip per partition, not in 16 KiB ones awaited in turn.
            max_batch_size=512 * 1024,
            request_timeout_ms=15_000,
        )
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        self._producer = producer

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    @property
    def _client(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise ConnectionError("Kafka producer is not connected")
        return self._producer

    async def publish(self, topic: str, envelope: Envelope) -> RecordMetadata:
        return await self.send_raw(
            topic, envelope.to_bytes(), key=envelope.key, headers=envelope_headers(envelope)
        )

    async def send_raw(
        self, topic: str, value: bytes, *, key: str | bytes | None = None, headers: Headers = ()
    ) -> RecordMetadata:
        raw_key = key.encode() if isinstance(key, str) else key
        return await self._client.send_and_wait(
            topic, value, key=raw_key, headers=list(headers) or None
        )

    async def send_many(self, messages: list[tuple[str, bytes, bytes | None, Headers]]) -> None:
        """Send a batch and wait for every acknowledgement (faster than one round trip each).

        Messages are packed into one record batch per partition, chosen by the producer's own
        partitioner (so a key lands where `publish` would put it, in order): aiokafka's
        per-message ``send`` cost ~150 µs each, which made 1,000 events take 150 ms."""
        client = self._client
        batches: dict[tuple[str, int], list[Any]] = {}
        futures = []
        placed: dict[str, dict[bytes, int]] = {}
        for topic in {m[0] for m in messages}:
            # Metadata first, before `_partition` reads it. A key's partition is kept while
            # the topic's partitions stay the same: the partitioner's murmur2 is pure Python
            # and cost more than the rest of a message.
            partitions = frozenset(await client.partitions_for(topic))
            known = self._partitions.get(topic)
            if known is None or known[0] != partitions or len(known[1]) > PARTITION_CACHE_KEYS:
                known = self._partitions[topic] = (partitions, {})
            placed[topic] = known[1]
        for topic, value, key, headers in messages:
            cache = placed[topic]
            partition = cache.get(key) if key is not None else None
            if partition is None:
                partition = client._partition(topic, None, None, None, key, value)
                if key is not None:
                    cache[key] = partition
            builders = batches.setdefault((topic, partition), [client.create_batch()])
            meta = builders[-1].append(timestamp=None, key=key, value=value, headers=list(headers))
            if meta is None:  # that batch is full: start another
                builders.append(client.create_batch())
                builders[-1].append(timestamp=None, key=key, value=value, headers=list(headers))
        for (topic, partition), builders in batches.items():
            for builder in builders:
                futures.append(await client.send_batch(builder, topic, partition=partition))
        await asyncio.gather(*futures)

    async def ping(self) -> None:
        """Readiness: the cluster answers a metadata request."""
        await self._client.client.fetch_all_metadata()


def envelope_headers(envelope: Envelope) -> Headers:
    return event_headers(envelope.id, envelope.type, envelope.correlation_id)


def event_headers(event_id: str, event_type: str, correlation_id: str | None) -> Headers:
    """Kafka headers naming an event, so tools can route or skip it without decoding."""
    headers = [("event-id", event_id.encode()), ("event-type", event_type.encode())]
    if correlation_id:
        headers.append(("correlation-id", correlation_id.encode()))
    return headers


class Deduplicator(Protocol):
    """Remembers which event ids a consumer has applied."""

    async def seen(self, event_id: str) -> bool: ...

    async def mark(self, event_id: str) -> None: ...


class RedisDeduplicator:
    """Applied event ids in Redis with a TTL longer than any redelivery window."""

    def __init__(self, redis: Any, consumer: str, *, ttl_seconds: int = 7 * 24 * 3600) -> None:
        self._redis = redis
        self._prefix = f"dedupe:{consumer}:"
        self._ttl = ttl_seconds

    async def seen(self, event_id: str) -> bool:
        return bool(await self._redis.exists(self._prefix + event_id))

    async def mark(self, event_id: str) -> None:
        await self._redis.set(self._prefix + event_id, b"1", ex=self._ttl)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 3
    initial_backoff: float = 0.05
    max_backoff: float = 2.0
    # How long after a message's first try an outage (`algotrade.outages.unreachable`) is
    # retried without counting as an attempt; 0 counts it like any other error.
    outage_seconds: float = 0.0

    def backoff(self, attempt: int) -> float:
        return float(min(self.max_backoff, self.initial_backoff * 2 ** (attempt - 1)))


class GiveUpHandler(Protocol):
    """Called once when the runner gives up on a message (its last attempt failed), before the
    message goes to the DLQ: the place to record the failure where users see it."""

    def __call__(
        self,
        envelope: Envelope,
        payload: BaseModel,
        record: ConsumerRecord[Any, Any],
        error: BaseException,
        attempts: int,
    ) -> Awaitable[None]: ...


class EventHandler(Protocol):
    def __call__(
        self, envelope: Envelope, payload: BaseModel, record: ConsumerRecord[Any, Any]
    ) -> Awaitable[None]: ...


Decoded = tuple[Envelope, BaseModel, ConsumerRecord[Any, Any]]


class BatchHandler(Protocol):
    def __call__(self, items: Sequence[Decoded]) -> Awaitable[None]: ...


@dataclass
class ConsumerStats:
    handled: int = 0
    skipped_duplicates: int = 0
    dead_lettered: int = 0
    retries: int = 0
    dead_letters: list[str] = field(default_factory=list)


class ConsumerStalled(RuntimeError):
    """A consumer that has held no partition for longer than it may (see `ConsumerRunner`)."""


class ConsumerRunner:
    """Consumes topics in a group and applies a handler under the policy in the module doc."""

    def __init__(
        self,
        *,
        bootstrap: str,
        topics: list[str],
        group_id: str,
        handler: EventHandler,
        producer: EventProducer,
        registry: EventRegistry,
        deduplicator: Deduplicator | None = None,
        retry: RetryPolicy | None = None,
        max_batch: int = 200,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        consumer_options: dict[str, Any] | None = None,
        on_give_up: GiveUpHandler | None = None,
        stall_seconds: float | None = None,
        batch_handler: BatchHandler | None = None,
    ) -> None:
        self._on_give_up = on_give_up
        self._batch_handler = batch_handler
        self._stall_seconds = stall_seconds
        self._bootstrap = bootstrap
        self._topics = topics
        self._max_batch = max_batch
        self._options: dict[str, Any] = {
            "auto_offset_reset": "earliest",
            **(consumer_options or {}),
        }
        # Counts revocations: a batch fetched before one may no longer be ours to commit.
        self._revocations = 0
        self._group_id = group_id
        self._consumer = self._new_consumer()
        self._handler = handler
        self._producer = producer
        self._registry = registry
        self._dedupe = deduplicator
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._stopping = asyncio.Event()
        self._started = asyncio.Event()
        self._ended = asyncio.Event()
        self.stats = ConsumerStats()

    def _new_consumer(self) -> AIOKafkaConsumer:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=self._group_id,
            enable_auto_commit=False,
            max_poll_records=self._max_batch,
            **self._options,
        )
        consumer.subscribe(self._topics, listener=_CountRevocations(self))
        return consumer

    async def run(self) -> None:
        """Consume until `stop` is called. Start it as a task; await `stop` to end it."""
        try:
            if await self._start():
                await self._consume()
        finally:
            self._ended.set()

    async def _start(self) -> bool:
        """Start the consumer, retrying while Kafka cannot be reached; False if stopped first.

        A failed start leaves an aiokafka consumer that cannot be started again, so each try
        gets a new one.
        """
        delay = self._retry.initial_backoff
        while not self._stopping.is_set():
            try:
                await self._consumer.start()
            except KafkaError as exc:
                await self._consumer.stop()
                logger.warning(
                    "group %s cannot start consuming %s (%r); retrying in %.1fs",
                    self._group_id,
                    self._topics,
                    exc,
                    delay,
                )
                self._consumer = self._new_consumer()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
                delay = min(delay * 2, self._retry.max_backoff)
                continue
            self._started.set()
            return True
        await self._consumer.stop()
        return False

    async def _consume(self) -> None:
        unassigned_since: float | None = asyncio.get_running_loop().time()
        try:
            while not self._stopping.is_set():
                unassigned_since = self._check_stall(unassigned_since)
                try:
                    batches = await self._consumer.getmany(timeout_ms=200)
                except KafkaError as exc:  # the broker is away: aiokafka reconnects by itself
                    logger.warning("fetch failed (%r); retrying", exc)
                    await self._sleep(self._retry.max_backoff)
                    continue
                for tp, records in batches.items():
                    await self._process_partition(tp, records)
                    if self._stopping.is_set():
                        break
        finally:
            await self._consumer.stop()

    def _check_stall(self, unassigned_since: float | None) -> float | None:
        """Raise `ConsumerStalled` after ``stall_seconds`` without a single partition.

        Seen under chaos: after a broker restart a member can stay out of its group for good,
        looking alive while it consumes nothing. Ending ``run`` lets the process exit and its
        supervisor start a fresh member. Off by default: a group with more members than
        partitions has idle members by design.
        """
        now = asyncio.get_running_loop().time()
        if self._stall_seconds is None or self._consumer.assignment():
            return None
        if unassigned_since is None:
            return now
        if now - unassigned_since > self._stall_seconds:
            raise ConsumerStalled(
                f"group {self._group_id}: no partition assigned for {self._stall_seconds:.0f}s"
            )
        return unassigned_since

    async def wait_started(self) -> None:
        """Return once the consumer joined its group, or once `run` ended without joining
        (stopped, or failed: the caller finds why in its task)."""
        started = asyncio.ensure_future(self._started.wait())
        ended = asyncio.ensure_future(self._ended.wait())
        try:
            await asyncio.wait({started, ended}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            started.cancel()
            ended.cancel()

    async def stop(self) -> None:
        self._stopping.set()

    async def _process_partition(
        self, tp: TopicPartition, records: list[ConsumerRecord[Any, Any]]
    ) -> None:
        next_offset: int | None = None
        revocations = self._revocations
        batched = self._batch_handler is not None and len(records) > 1
        if batched and await self._process_batch(records):
            if self._revocations == revocations:
                await self._commit(tp, records[-1].offset + 1)
            return
        for record in records:
            if self._revocations != revocations:
                # A rebalance took the partition (perhaps to give it back) while we worked: its
                # owner resumes from the last committed offset, so neither go on nor commit.
                logger.info(
                    "partition revoked; leaving the rest of the batch", extra=_where(record)
                )
                return
            try:
                await self._process(record)
            except Exception:
                # The DLQ could not be written: keep the message, come back to it later.
                logger.exception(
                    "cannot settle message, will retry",
                    extra=_where(record),
                )
                if next_offset is not None and self._revocations == revocations:
                    await self._commit(tp, next_offset)
                if self._revocations == revocations:
                    self._consumer.seek(tp, record.offset)
                await self._sleep(self._retry.max_backoff)
                return
            next_offset = record.offset + 1
            if self._stopping.is_set():
                break
        if next_offset is not None:
            if self._revocations != revocations:
                logger.info(
                    "partition revoked during the batch; offset %d left to its owner",
                    next_offset,
                    extra={"topic": tp.topic, "partition": tp.partition, "offset": next_offset},
                )
                return
            await self._commit(tp, next_offset)

    async def _commit(self, tp: TopicPartition, offset: int) -> None:
        """Commit ``offset`` (the next one to read) for ``tp``, after the effects are durable.

        A commit that fails is not retried here. If the partition moved in a rebalance, its
        new owner resumes from the last committed offset; if the broker is away, a later commit
        covers this one. Either way the messages may be delivered again, and consumers skip
        event ids they already applied, so the effect still happens once.
        """
        try:
            await self._consumer.commit({tp: offset})
        except (CommitFailedError, IllegalStateError) as exc:
            logger.warning(
                "offset %d of %s[%d] not committed: the partition was reassigned (%r)",
                offset,
                tp.topic,
                tp.partition,
                exc,
                extra={"topic": tp.topic, "partition": tp.partition, "offset": offset},
            )
        except KafkaError as exc:
            logger.warning(
                "offset %d of %s[%d] not committed: %r",
                offset,
                tp.topic,
                tp.partition,
                exc,
                extra={"topic": tp.topic, "partition": tp.partition, "offset": offset},
            )

    async def _process_batch(self, records: list[ConsumerRecord[Any, Any]]) -> bool:
        """The batch fast path (module doc): True when every record is settled."""
        assert self._batch_handler is not None
        items: list[Decoded] = []
        for record in records:
            try:
                envelope, payload = self._registry.decode(record.value)
            except EventError:
                return False  # the per-message path dead-letters it, in order
            items.append((envelope, payload, record))
        if self._dedupe is not None:
            items = [item for item in items if not await self._dedupe.seen(item[0].id)]
        try:
            await self._batch_handler(items)
        except Exception as exc:
            logger.warning(
                "batch of %d failed (%r); applying its messages one by one",
                len(items),
                exc,
                extra=_where(records[0]),
            )
            return False
        if self._dedupe is not None:
            for envelope, _, _ in items:
                await self._dedupe.mark(envelope.id)
        self.stats.handled += len(items)
        self.stats.skipped_duplicates += len(records) - len(items)
        return True

    async def _process(self, record: ConsumerRecord[Any, Any]) -> None:
        try:
            envelope, payload = self._registry.decode(record.value)
        except EventError as exc:
            await self._dead_letter(record, exc, attempts=0)
            return
        if self._dedupe is not None and await self._dedupe.seen(envelope.id):
            self.stats.skipped_duplicates += 1
            logger.info("skip applied event %s", envelope.id, extra=_where(record))
            return
        attempt = tries = 0
        first_try = time.monotonic()
        while True:
            tries += 1
            try:
                await self._handler(envelope, payload, record)
            except Exception as exc:
                outage = (
                    not isinstance(exc, EventError)
                    and time.monotonic() - first_try < self._retry.outage_seconds
                    and unreachable(exc) is not None
                )
                if outage and self._stopping.is_set():
                    raise  # not settled: the partition's next owner takes it from here
                if not outage:
                    attempt += 1
                    if attempt >= self._retry.max_attempts or isinstance(exc, EventError):
                        await self._give_up(envelope, payload, record, exc, attempt)
                        await self._dead_letter(record, exc, attempts=attempt)
                        return
                self.stats.retries += 1
                logger.warning(
                    "handler failed (%s %d/%d): %r",
                    "outage, not counted; attempts" if outage else "attempt",
                    attempt,
                    self._retry.max_attempts,
                    exc,
                    extra=_where(record),
                )
                await self._sleep(self._retry.backoff(tries))
                continue
            break
        if self._dedupe is not None:
            await self._dedupe.mark(envelope.id)
        self.stats.handled += 1

    async def _give_up(
        self,
        envelope: Envelope,
        payload: BaseModel,
        record: ConsumerRecord[Any, Any],
        exc: BaseException,
        attempts: int,
    ) -> None:
        if self._on_give_up is None:
            return
        try:
            await self._on_give_up(envelope, payload, record, exc, attempts)
        except Exception:  # the message still goes to the DLQ; the callback's failure is logged
            logger.exception("on_give_up failed", extra=_where(record))

    async def _dead_letter(
        self, record: ConsumerRecord[Any, Any], exc: BaseException, *, attempts: int
    ) -> None:
        error = f"{type(exc).__name__}: {exc}"[:2000]
        headers = [
            *[(k, v) for k, v in (record.headers or ()) if not k.startswith("dlq-")],
            ("dlq-error", error.encode()),
            ("dlq-error-type", type(exc).__name__.encode()),
            ("dlq-source-topic", record.topic.encode()),
            ("dlq-source-partition", str(record.partition).encode()),
            ("dlq-source-offset", str(record.offset).encode()),
            ("dlq-attempts", str(attempts).encode()),
            ("dlq-consumer-group", self._group_id.encode()),
        ]
        await self._producer.send_raw(
            Topics.dlq(record.topic), record.value or b"", key=record.key, headers=headers
        )
        self.stats.dead_lettered += 1
        self.stats.dead_letters.append(error)
        logger.error("dead-lettered after %d attempts: %s", attempts, error, extra=_where(record))


class _CountRevocations(ConsumerRebalanceListener):  # type: ignore[misc]
    """Tells the runner that partitions were revoked, so it commits nothing fetched before."""

    def __init__(self, runner: ConsumerRunner) -> None:
        self._runner = runner

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self._runner._revocations += 1
        if revoked:
            logger.info(
                "partitions revoked: %s", sorted(f"{t.topic}[{t.partition}]" for t in revoked)
            )

    async def on_partitions_assigned(self, assigned: Any) -> None:
        logger.info(
            "partitions assigned: %s", sorted(f"{t.topic}[{t.partition}]" for t in assigned)
        )


def _where(record: ConsumerRecord[Any, Any]) -> dict[str, Any]:
    return {"topic": record.topic, "partition": record.partition, "offset": record.offset}


@contextlib.asynccontextmanager
async def consuming(make_runner: Callable[[], ConsumerRunner], *, name: str) -> AsyncIterator[None]:
    """A service's event consumer for as long as the block runs: a runner that ends by itself
    (a group that stalled, an unexpected error) is replaced by a new one from
    ``make_runner``, after a pause that doubles (0.5 s to 30 s) while runners keep ending."""
    stop = asyncio.Event()
    task = asyncio.create_task(_keep_consuming(make_runner, stop), name=name)
    try:
        yield
    finally:
        await stop_task(task, stop, within=10.0)


async def _keep_consuming(make_runner: Callable[[], ConsumerRunner], stop: asyncio.Event) -> None:
    backoff = 0.5
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        began = loop.time()
        runner = make_runner()
        run = asyncio.create_task(runner.run())
        stopped = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({run, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            await runner.stop()
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(run), timeout=5.0)
        if stop.is_set():
            return
        if run.done() and not run.cancelled() and run.exception() is not None:
            logger.warning("event consumer ended (%r); starting again", run.exception())
        if loop.time() - began > 60:
            backoff = 0.5  # it ran well for a while: start the doubling again
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, 30.0)
