"""WebSocket notifications: a pushed bar reaching a subscribed client, one event fanned out to
1,000 sockets, and the memory an idle socket holds, on the embedded stack as `make run` starts it.

    uv run --frozen python bench/bench_notifications.py [--bars 300] [--fanout 1000]
        [--events 50] [--idle 10000]

Starts the whole stack (`algotrade_testkit.stack.start_stack`: embedded PostgreSQL, Redis, Apache
Kafka and S3, the seven services and the workers, each a process served as in production) with
one change: the per-user write limit is raised (``RATE_LIMITS``; its Redis script still runs on
every request), since the bench pushes more bars a minute than the default lets a user write.
The keys are the stack's own (``<state>/keys.json``): the bench mints internal tokens with the
gateway's signer, as the gateway does. Then, from this process (asyncio on uvloop, the
``websockets`` library, httpx):

1. pushed bar -> WebSocket client: a user registers through the gateway, opens ``/ws`` at the
   gateway (subprotocols ``algotrade.v1`` and ``bearer.<access token>``, as a browser does) and
   subscribes to ``market:<own symbol>:1m``; ``--bars`` bars are pushed one at a time
   (``POST /api/market/bars``, one bar each, times increasing) and each is timed from just
   before its POST is sent to its event arriving on the socket. Beside it, the same event is
   timed where it is read from Kafka (a consumer of ``market.bars`` in this process) and on a
   second socket straight to the notification service (an internal token, no gateway), which
   splits the path into the market-data service (ingest, outbox relay), the notification
   service and the gateway's relay. Baseline, in the same requests: the POST's own round trip.
   The families start in ``shadow`` mode, which pushes (flagged ``shadow: true``).
2. one event fanned out to ``--fanout`` sockets, all connected straight to the notification
   service and subscribed to ``user`` of one user: ``--events`` ``backtest.progress`` events of
   that user produced to Kafka one at a time (the next once every socket has the previous);
   each delivery is timed from just before the event is produced (the bench keeps each event
   id's send time) to its arrival on that socket. Baseline: the same with one socket.
3. memory per idle socket: the notification service's RSS (psutil; the service is a process
   of its own, so the clients' memory is not in it, nor are the kernel's socket buffers) before
   and after ``--idle`` sockets are open, each sent its ``welcome`` and subscribed to nothing;
   then once more after each of them subscribed to ``user``. The sockets are opened as the
   gateway opens its upstream ones (no permessage-deflate), at most 128 handshakes at a time.

They run in the order 3, 2, 1: the memory is measured on a service that has not yet held a
crowd of sockets (memory freed by closed sockets would be reused, hiding part of the cost).

The client process shares the machine's cores with the stack, and every receipt time includes
the client's own work of reading that message (for 1,000 sockets in one process, that is part
of the spread between the first and the last socket); CPU seconds per message are printed for
the processes involved. Goals of the issue: p99 < 20 ms from pushed bar to the client, and
< 10 KB per idle socket.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import shutil
import tempfile
import time
import uuid
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil
import uvloop
from aiokafka import AIOKafkaConsumer, TopicPartition
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from algotrade import backtest_events
from algotrade.auth import InternalTokens
from algotrade.bus import EventProducer
from algotrade.config import ServiceSettings
from algotrade.events import Envelope, Topics, new_event_id
from algotrade.keys import load_or_create_installation_keys
from algotrade_devstack.infra import tail
from algotrade_testkit.stack import RunningStack, start_stack

ROOT = Path(__file__).resolve().parents[1]
GOAL_PUSH_P99_MS = 20.0
GOAL_IDLE_SOCKET_KB = 10.0
PASSWORD = "benchmarks-deserve-passwords-1"
SYMBOL = "BENCH-WS"
TIMEFRAME = "1m"
FIRST_BAR = 1_699_999_980  # seconds, on a minute
WARMUP = 20  # bars or events sent before the timed ones (connections, caches, lazy imports)
HANDSHAKES_AT_ONCE = 128
FILES_WANTED = 65_536
# Everything else as `make run` has it; writes: far more than a bench sends (300 a minute by
# default, per user); sockets per user: the 10,000 idle sockets are one user's (100 by default).
STACK_ENV = {
    "RATE_LIMITS": json.dumps(
        {"write": {"limit": 1_000_000_000, "period_seconds": 60, "fail_open": True}}
    ),
    "MAX_SOCKETS_PER_USER": "20000",
}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def line(name: str, ms: list[float], extra: str = "") -> str:
    return (
        f"  {name:<40} p50 {percentile(ms, 50):8.2f} ms  p90 {percentile(ms, 90):8.2f} ms  "
        f"p99 {percentile(ms, 99):8.2f} ms  (n={len(ms)}){extra}"
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux): where the work goes."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_per(pids: dict[str, int], before: dict[str, float], count: int) -> str:
    """CPU milliseconds each process spent per message since ``before``."""
    return ", ".join(
        f"{name} {(cpu_seconds(pid) - before[name]) * 1000 / max(count, 1):.2f} ms"
        for name, pid in pids.items()
    )


def raise_file_limit() -> int:
    """Raise this process's open-file limit (the stack's processes inherit it); the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = FILES_WANTED if hard == resource.RLIM_INFINITY else min(hard, FILES_WANTED)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return soft
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return wanted


def ws_url(http_url: str) -> str:
    return http_url.replace("http://", "ws://", 1) + "/ws"


def bar_seconds(payload: dict[str, Any]) -> float | None:
    """Open time (epoch seconds) of the newest bar of a ``market.bars`` event's payload."""
    bars = payload.get("bars") or []
    if not bars:
        return None
    ts = bars[-1]["ts"]
    if isinstance(ts, str):
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
    return ts / 1000 if ts > 10**11 else float(ts)


async def expect(ws: ClientConnection, kind: str, channel: str | None = None) -> dict[str, Any]:
    """The next message of ``kind`` (on ``channel``); an error message fails the bench."""
    async with asyncio.timeout(20):
        while True:
            message = orjson.loads(await ws.recv())
            if message["type"] == "error":
                raise SystemExit(f"the notification service refused: {message}")
            if message["type"] == kind and (channel is None or message.get("channel") == channel):
                return dict(message)


async def subscribe(ws: ClientConnection, channel: str, snapshot: bool) -> None:
    await ws.send(orjson.dumps({"type": "subscribe", "channel": channel}).decode())
    await expect(ws, "subscribed", channel)
    if snapshot:
        await expect(ws, "snapshot", channel)


async def direct_socket(url: str, token: str, **options: Any) -> ClientConnection:
    """A socket straight to the notification service, opened as the gateway opens its
    upstream ones (internal token, no compression), after its ``welcome``."""
    ws = await connect(
        url,
        additional_headers={"Authorization": f"Bearer {token}"},
        compression=None,
        open_timeout=30,
        close_timeout=5,
        **options,
    )
    await expect(ws, "welcome")
    return ws


# -- 1. pushed bar -> WebSocket client ---------------------------------------------------------


def bar(i: int) -> dict[str, Any]:
    price = 100.0 + (i % 50) * 0.1
    return {
        "ts": FIRST_BAR + 60 * i,
        "open": price,
        "high": price + 0.5,
        "low": price - 0.5,
        "close": price + 0.2,
        "volume": 1000.0 + i,
    }


async def arrival(ws: ClientConnection, channel: str, ts: int) -> float:
    """When the event of the bar opening at ``ts`` arrived on ``ws`` (perf_counter)."""
    while True:
        raw = await ws.recv()
        now = time.perf_counter()
        message = orjson.loads(raw)
        if (
            message["type"] == "event"
            and message["channel"] == channel
            and bar_seconds(message["event"]["payload"]) == ts
        ):
            return now


async def bus_reader(bootstrap: str, topic: str) -> AIOKafkaConsumer:
    """A consumer of every partition of ``topic``, from its end, with no group."""
    # A fetch waiting on the broker is answered as soon as a record lands: no added latency.
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, fetch_max_wait_ms=100)
    await consumer.start()
    await consumer._client.force_metadata_update()
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
    consumer.assign(partitions)
    await consumer.seek_to_end(*partitions)
    for tp in partitions:  # resolve the end offsets now, not on the first timed fetch
        await consumer.position(tp)
    return consumer


async def on_bus(consumer: AIOKafkaConsumer, ts: int) -> float:
    """When the ``market.bars`` event of the bar opening at ``ts`` was read from Kafka."""
    while True:
        batch = await consumer.getmany(timeout_ms=1000)
        now = time.perf_counter()
        for records in batch.values():
            for record in records:
                payload = orjson.loads(record.value)["payload"]
                if payload.get("symbol") == SYMBOL and bar_seconds(payload) == ts:
                    return now


async def push_latency(
    stack: RunningStack,
    minter: InternalTokens,
    bus: AIOKafkaConsumer,
    bars: int,
    pids: dict[str, int],
) -> dict[str, list[float]]:
    gateway = stack.url()
    channel = f"market:{SYMBOL}:{TIMEFRAME}"
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as http:
        credentials = {"email": f"bench-{uuid.uuid4().hex[:8]}@example.com", "password": PASSWORD}
        (await http.post("/api/auth/register", json=credentials)).raise_for_status()
        login = await http.post("/api/auth/login", json=credentials)
        login.raise_for_status()
        access = login.json()["access_token"]
        auth = {"Authorization": f"Bearer {access}"}
        me = await http.get("/api/auth/me", headers=auth)
        me.raise_for_status()
        user_id = me.json()["id"]

        async def post(i: int) -> tuple[float, float]:
            body = {"symbol": SYMBOL, "timeframe": TIMEFRAME, "bars": [bar(i)]}
            started = time.perf_counter()
            answer = await http.post("/api/market/bars", json=body, headers=auth)
            ended = time.perf_counter()
            if answer.status_code != 200 or answer.json()["counts"]["accepted"] != 1:
                raise SystemExit(f"POST /api/market/bars: {answer.status_code} {answer.text}")
            return started, ended

        await post(0)  # the series exists (the user's own) before anyone subscribes
        via_gateway = await connect(
            ws_url(gateway),
            subprotocols=["algotrade.v1", f"bearer.{access}"],  # type: ignore[list-item]
            open_timeout=30,
            close_timeout=5,
        )
        direct = await direct_socket(
            ws_url(stack.url("notification-service")), minter.for_user(user_id, "*")
        )
        try:
            welcome = await expect(via_gateway, "welcome")
            print(
                f"  families' modes: intraday_bars {welcome['features']['intraday_bars']} "
                f"(shadow pushes too)"
            )
            await subscribe(via_gateway, channel, snapshot=True)
            await subscribe(direct, channel, snapshot=True)
            out: dict[str, list[float]] = {"gateway": [], "direct": [], "bus": [], "post": []}
            cpu: dict[str, float] = {}
            for n, i in enumerate(range(1, WARMUP + bars + 1)):
                if n == WARMUP:
                    cpu = {name: cpu_seconds(pid) for name, pid in pids.items()}
                ts = bar(i)["ts"]
                async with asyncio.timeout(15):
                    (started, ended), at_bus, at_service, at_gateway = await asyncio.gather(
                        post(i),
                        on_bus(bus, ts),
                        arrival(direct, channel, ts),
                        arrival(via_gateway, channel, ts),
                    )
                if n >= WARMUP:
                    out["gateway"].append((at_gateway - started) * 1000)
                    out["direct"].append((at_service - started) * 1000)
                    out["bus"].append((at_bus - started) * 1000)
                    out["post"].append((ended - started) * 1000)
            print(f"  CPU per bar: {cpu_per(pids, cpu, bars)}")
            return out
        finally:
            for ws in (via_gateway, direct):
                with contextlib.suppress(Exception):
                    await ws.close()


# -- 2. one event fanned out to many sockets ---------------------------------------------------


class Deliveries:
    """Receipt times (perf_counter) of events by id, over any number of sockets."""

    def __init__(self) -> None:
        self.arrived: dict[str, list[float]] = {}
        self._wanted: dict[str, tuple[int, asyncio.Event]] = {}
        self.closed: list[str] = []

    def expect(self, event_id: str, sockets: int) -> asyncio.Event:
        done = asyncio.Event()
        self.arrived[event_id] = []
        self._wanted[event_id] = (sockets, done)
        return done

    def record(self, event_id: str, at: float) -> None:
        times = self.arrived.get(event_id)
        if times is None:
            return  # a probe, or an event already given up on
        times.append(at)
        sockets, done = self._wanted[event_id]
        if len(times) >= sockets:
            done.set()

    def take(self, event_id: str) -> list[float]:
        self._wanted.pop(event_id, None)
        return self.arrived.pop(event_id, [])

    async def read(self, ws: ClientConnection) -> None:
        """Record every event ``ws`` receives until it closes."""
        try:
            async for raw in ws:
                now = time.perf_counter()
                message = orjson.loads(raw)
                if message["type"] == "event":
                    self.record(message["event"]["id"], now)
        except ConnectionClosed as exc:
            self.closed.append(f"{exc.rcvd.code if exc.rcvd else 'no close'}")


def progress(user: str, job: str, k: int, total: int) -> Envelope:
    return Envelope(
        type=backtest_events.PROGRESS,
        producer="bench",
        key=job,
        user_id=user,
        payload={
            "job_id": job,
            "kind": "backtest",
            "progress": min(1.0, (k + 1) / total),
            "chunks_done": k + 1,
            "chunks_total": total,
        },
    )


async def until_consuming(
    producer: EventProducer, topic: str, user: str, deliveries: Deliveries
) -> None:
    """Probe until an event reaches the one socket (the service's group starts at the end of
    the topics, so only events produced after it was assigned its partitions are its)."""
    async with asyncio.timeout(90):
        while True:
            envelope = progress(user, new_event_id(), 0, 1)
            done = deliveries.expect(envelope.id, 1)
            await producer.publish(topic, envelope)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await done.wait()
            if deliveries.take(envelope.id):
                return


async def fan_out(
    producer: EventProducer,
    topic: str,
    user: str,
    deliveries: Deliveries,
    sockets: int,
    events: int,
    pids: dict[str, int],
) -> tuple[list[float], list[float], list[float], int]:
    """``events`` events one at a time, each awaited on ``sockets`` sockets: every delivery's
    latency, each event's first and last one, and deliveries that never came (within 30 s)."""
    job = new_event_id()
    every: list[float] = []
    first: list[float] = []
    last: list[float] = []
    missing = 0
    cpu: dict[str, float] = {}
    for k in range(-5, events):
        if k == 0:
            cpu = {name: cpu_seconds(pid) for name, pid in pids.items()}
        envelope = progress(user, job, max(k, 0), events)
        done = deliveries.expect(envelope.id, sockets)
        started = time.perf_counter()
        await producer.publish(topic, envelope)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(30):
                await done.wait()
        times = [(t - started) * 1000 for t in deliveries.take(envelope.id)]
        if k >= 0:
            missing += sockets - len(times)
            every += times
            if times:
                first.append(min(times))
                last.append(max(times))
        await asyncio.sleep(0.02)
    print(f"  {sockets:,} socket(s): CPU per event: {cpu_per(pids, cpu, events)}")
    return every, first, last, missing


async def open_many(
    url: str, token: str, n: int, *, channel: str | None = None
) -> tuple[list[ClientConnection], Counter[str]]:
    """``n`` sockets straight to the service (at most `HANDSHAKES_AT_ONCE` opening at a time),
    each past its ``welcome`` (and subscribed to ``channel``); the failures by reason."""
    gate = asyncio.Semaphore(HANDSHAKES_AT_ONCE)
    failures: Counter[str] = Counter()

    async def one() -> ClientConnection | None:
        async with gate:
            try:
                ws = await direct_socket(url, token, ping_interval=None, max_queue=64)
                if channel is not None:
                    await subscribe(ws, channel, snapshot=False)
                return ws
            except Exception as exc:
                failures[f"{type(exc).__name__}: {str(exc)[:100]}"] += 1
                return None

    opened = await asyncio.gather(*(one() for _ in range(n)))
    return [ws for ws in opened if ws is not None], failures


async def close_all(sockets: list[ClientConnection]) -> None:
    gate = asyncio.Semaphore(512)

    async def one(ws: ClientConnection) -> None:
        async with gate:
            with contextlib.suppress(Exception):
                await ws.close()

    await asyncio.gather(*(one(ws) for ws in sockets))


async def server_sockets(http: httpx.AsyncClient) -> int:
    answer = await http.get("/api/notifications/status")
    answer.raise_for_status()
    return int(answer.json()["sockets"])


async def until_sockets(http: httpx.AsyncClient, at_most: int, within: float = 60.0) -> int:
    """Wait until the service holds at most ``at_most`` sockets; how many it holds."""
    deadline = time.monotonic() + within
    while True:
        count = await server_sockets(http)
        if count <= at_most or time.monotonic() >= deadline:
            return count
        await asyncio.sleep(0.5)


# -- 3. memory per idle socket -----------------------------------------------------------------


def rss(pid: int) -> int:
    return int(psutil.Process(pid).memory_info().rss)


async def settled_rss(pid: int, seconds: float = 2.0) -> int:
    """RSS once the process has had ``seconds`` to finish what it was doing."""
    await asyncio.sleep(seconds)
    return rss(pid)


async def idle_memory(
    url: str, token: str, n: int, pid: int, status: httpx.AsyncClient
) -> dict[str, Any]:
    me = psutil.Process()
    warm, _ = await open_many(url, token, 20)  # lazy imports and first-use caches, not sockets
    await close_all(warm)
    await until_sockets(status, 0)
    before = await settled_rss(pid)
    client_before = me.memory_info().rss
    started = time.perf_counter()
    sockets: list[ClientConnection] = []
    failures: Counter[str] = Counter()
    steps: list[tuple[int, int]] = [(0, before)]
    step = max(1, n // 10)
    while len(sockets) < n:
        batch, failed = await open_many(url, token, min(step, n - len(sockets)))
        sockets += batch
        failures += failed
        steps.append((len(sockets), rss(pid)))
        if failed and len(batch) < len(failed):  # mostly failing: no point going on
            break
    opened_in = time.perf_counter() - started
    after = await settled_rss(pid, 3.0)
    held = await server_sockets(status)
    client_after = me.memory_info().rss
    figures: dict[str, Any] = {
        "sockets": sockets,
        "failures": failures,
        "before": before,
        "after": after,
        "held": held,
        "steps": steps,
        "opened_in": opened_in,
        "client_per_socket": (client_after - client_before) / max(len(sockets), 1),
    }
    # The same sockets, each subscribed to ``user`` (one stream of one user).
    started = time.perf_counter()
    gate = asyncio.Semaphore(HANDSHAKES_AT_ONCE)
    refused = 0

    async def sub(ws: ClientConnection) -> None:
        nonlocal refused
        async with gate:
            try:
                await subscribe(ws, "user", snapshot=False)
            except (Exception, SystemExit):
                refused += 1

    await asyncio.gather(*(sub(ws) for ws in sockets))
    figures["subscribed_in"] = time.perf_counter() - started
    figures["subscribed"] = await settled_rss(pid, 3.0)
    figures["refused"] = refused
    return figures


# -- the run -----------------------------------------------------------------------------------


async def run(args: argparse.Namespace, stack: RunningStack, files: int) -> None:
    status = stack.status()
    pids = {c["name"]: c["pid"] for c in status["children"] if c["pid"] is not None}
    notification_pid = pids["notification-service"]
    kafka = next(i["url"] for i in status["infrastructure"] if i["name"] == "kafka")
    keys = load_or_create_installation_keys(stack.state_dir)  # the stack's own, as written
    settings = ServiceSettings(environment="local", **keys.settings_values("gateway"))
    minter = InternalTokens(settings, ttl_seconds=3600)
    user = f"bench-ws-{uuid.uuid4().hex[:8]}"
    token = minter.for_user(user, "*")
    service = stack.url("notification-service")
    topics = Topics(os.environ.get("KAFKA_TOPIC_PREFIX", ""))
    status_client = httpx.AsyncClient(
        base_url=service, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    me = os.getpid()
    summary: list[tuple[str, float, str, str]] = []
    try:
        # 3 first: the service's memory before any crowd of sockets came and went.
        print(f"\n3. memory per idle socket: {args.idle:,} sockets straight to the service")
        mem = await idle_memory(ws_url(service), token, args.idle, notification_pid, status_client)
        opened = len(mem["sockets"])
        per_kb = (mem["after"] - mem["before"]) / max(opened, 1) / 1024
        print(
            f"  opened {opened:,} sockets in {mem['opened_in']:.1f} s "
            f"({opened / mem['opened_in']:,.0f}/s); the service reports {mem['held']:,} sockets"
        )
        if mem["failures"]:
            print(f"  NOT OPENED: {sum(mem['failures'].values()):,}; reasons:")
            for reason, count in mem["failures"].most_common(5):
                print(f"    {count:>6,} x {reason}")
        print(
            f"  service RSS: {mem['before'] / 2**20:.1f} MiB before, "
            f"{mem['after'] / 2**20:.1f} MiB with {opened:,} idle sockets"
        )
        steps = mem["steps"]
        half = steps[len(steps) // 2]
        slope = (steps[-1][1] - half[1]) / max(steps[-1][0] - half[0], 1) / 1024
        print(
            f"  per idle socket: {per_kb:.1f} KB (RSS after - before) / {opened:,}; "
            f"marginal from {half[0]:,} to {steps[-1][0]:,} sockets: {slope:.1f} KB"
        )
        sub_kb = (mem["subscribed"] - mem["after"]) / max(opened, 1) / 1024
        print(
            f"  then each subscribed to 'user' ({mem['subscribed_in']:.1f} s, "
            f"{mem['refused']} refused): +{sub_kb:.1f} KB per socket, "
            f"{(mem['subscribed'] - mem['before']) / max(opened, 1) / 1024:.1f} KB in all"
        )
        print(
            f"  (this client process: {mem['client_per_socket'] / 1024:.1f} KB per socket; "
            f"open-file limit {files:,})"
        )
        summary.append(
            (
                f"idle socket, {opened:,} open",
                per_kb,
                "KB",
                f"goal < {GOAL_IDLE_SOCKET_KB:.0f} KB: "
                + ("met" if per_kb < GOAL_IDLE_SOCKET_KB else "NOT met"),
            )
        )
        started = time.perf_counter()
        await close_all(mem["sockets"])
        left = await until_sockets(status_client, 0)
        print(f"  closed in {time.perf_counter() - started:.1f} s; {left} left at the service")

        print(
            f"\n2. one event fanned out: {args.events} backtest.progress events produced to "
            f"Kafka one at a time, to sockets subscribed to 'user'"
        )
        producer = EventProducer(kafka, client_id="bench-notifications")
        await producer.start()
        deliveries = Deliveries()
        readers: list[asyncio.Task[None]] = []
        crowd: list[ClientConnection] = []
        one: ClientConnection | None = None
        fan_pids = {"notification-service": notification_pid, "this client": me}
        try:
            one = await direct_socket(ws_url(service), token, ping_interval=None)
            await subscribe(one, "user", snapshot=False)
            readers.append(asyncio.create_task(deliveries.read(one)))
            await until_consuming(producer, topics.backtest_events, user, deliveries)
            base_every, _, _, base_missing = await fan_out(
                producer, topics.backtest_events, user, deliveries, 1, args.events, fan_pids
            )
            crowd, failures = await open_many(
                ws_url(service), token, args.fanout - 1, channel="user"
            )
            if failures:
                print(f"  NOT OPENED: {dict(failures)}")
            readers += [asyncio.create_task(deliveries.read(ws)) for ws in crowd]
            sockets = len(crowd) + 1
            every, first, last, missing = await fan_out(
                producer, topics.backtest_events, user, deliveries, sockets, args.events, fan_pids
            )
            dropped = Counter(deliveries.closed)  # by the server, before the bench closed any
        finally:
            await close_all(crowd)
            for task in readers:
                task.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
            if one is not None:
                with contextlib.suppress(Exception):
                    await one.close()
            await producer.stop()
        print(line("baseline: 1 socket, produced -> received", base_every))
        print(line(f"{sockets:,} sockets, every delivery", every))
        print(line(f"{sockets:,} sockets, the event's first socket", first))
        print(
            line(
                f"{sockets:,} sockets, the event's last socket",
                last,
                f"   every delivery / baseline at p50 x"
                f"{percentile(every, 50) / percentile(base_every, 50):.1f}, "
                f"at p99 x{percentile(every, 99) / percentile(base_every, 99):.1f}",
            )
        )
        if missing or base_missing or dropped:
            print(
                f"  MISSING deliveries: {missing} (of {sockets * args.events:,}), baseline "
                f"{base_missing}; sockets closed by the server: {dict(dropped)}"
            )
        summary.append((f"fan-out to {sockets:,}: last socket p99", percentile(last, 99), "ms", ""))
        await until_sockets(status_client, 0)

        print(
            f"\n1. pushed bar -> WebSocket client: {args.bars} bars, one per "
            f"POST /api/market/bars through the gateway, {SYMBOL} {TIMEFRAME}"
        )
        push_pids = {
            name: pids[name]
            for name in ("api-gateway", "market-data-service", "notification-service")
        }
        bus = await bus_reader(kafka, topics.market_bars)
        try:
            push = await push_latency(
                stack, minter, bus, args.bars, {**push_pids, "this client": me}
            )
        finally:
            await bus.stop()
        print(line("baseline: the POST's own round trip", push["post"]))
        ratio50 = percentile(push["gateway"], 50) / percentile(push["post"], 50)
        ratio99 = percentile(push["gateway"], 99) / percentile(push["post"], 99)
        print(
            line(
                "POST sent -> event at the gateway's /ws",
                push["gateway"],
                f"   x{ratio50:.2f} the POST at p50, x{ratio99:.2f} at p99",
            )
        )
        print(line("POST sent -> market.bars read from Kafka", push["bus"]))
        print(line("POST sent -> event at the service's /ws", push["direct"]))
        consumed = [d - b for d, b in zip(push["direct"], push["bus"], strict=True)]
        print(line("Kafka -> the service's /ws (service - Kafka)", consumed))
        added = [g - d for g, d in zip(push["gateway"], push["direct"], strict=True)]
        print(line("the gateway's relay (gateway - service)", added))
        p99 = percentile(push["gateway"], 99)
        summary.insert(
            0,
            (
                "pushed bar -> client p99 (gateway /ws)",
                p99,
                "ms",
                f"goal < {GOAL_PUSH_P99_MS:.0f} ms: "
                + ("met" if p99 < GOAL_PUSH_P99_MS else "NOT met"),
            ),
        )
    finally:
        await status_client.aclose()
    print("\nagainst the goals:")
    for name, value, unit, verdict in summary:
        print(f"  {name:<40} {value:8.2f} {unit:<3} {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=300)
    parser.add_argument("--fanout", type=int, default=1_000)
    parser.add_argument("--events", type=int, default=50)
    parser.add_argument("--idle", type=int, default=10_000)
    args = parser.parse_args()

    files = raise_file_limit()  # before the stack starts: its processes inherit it
    print(
        f"bench_notifications: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f} at start, "
        f"open-file limit {files:,}"
    )
    if files < args.idle + 1_000:
        print(f"  the open-file limit ({files:,}) is below {args.idle:,} sockets and the rest")
    state = Path(tempfile.mkdtemp(prefix="bench-notifications-"))
    stack: RunningStack | None = None
    try:
        started = time.perf_counter()
        stack = start_stack(state, cwd=ROOT, env=STACK_ENV)
        kafka = next(i for i in stack.status()["infrastructure"] if i["name"] == "kafka")
        print(
            f"embedded stack ready in {time.perf_counter() - started:.1f} s "
            f"(gateway {stack.url()}, broker: {kafka['source']})"
        )
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(run(args, stack, files))
    finally:
        if stack is not None:
            code = stack.stop()
            if code != 0:
                print(f"the stack stopped with exit code {code}; its output:")
                print(tail(stack.output, 40))
        shutil.rmtree(state, ignore_errors=True)
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
