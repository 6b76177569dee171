"""Market data service benchmark: latest-N reads, ingestion and replay throughput.

Run: ``uv run --frozen python bench/bench_market_data.py [--bars 300000] [--clients 4]``

Starts its own service process (uvicorn with uvloop + httptools, as ``serve`` runs it) on
loopback against real PostgreSQL, Redis and Apache Kafka, each from ``DATABASE_URL`` /
``REDIS_URL`` / ``KAFKA_BOOTSTRAP``, else 127.0.0.1:5432 / :6379 when they answer, else embedded
(``algotrade_devstack.infra``: pgserver, ``redis-server``, the Kafka 4.1.1 broker; librdkafka's mock
cluster only as a stand-in where java/mvn are missing, which the output then says). A fresh
database, key prefix and topic prefix (topics from the topic table) are used and everything the
bench started is stopped afterwards.

Figures:

- latest-100 read: the Redis floor (redis-py ``ZRANGE -100 -1`` on the same window, and the
  service's window read), HTTP over loopback with 1 connection and with 32 concurrent
  connections (a minimal keep-alive HTTP/1.1 client, so the client's own overhead stays
  small), and the handler's time measured inside the server on those same 1-connection
  requests (the route's ``Server-Timing`` header);
- ingestion: 5,000-bar batches through ``POST /api/market/bars`` from concurrent clients, until
  every response arrived and until the outbox relay published every event to Kafka (and the
  events are then counted on Kafka);
- replay: a stored series replayed at ``speed="max"`` through the same path.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import psutil
import uvloop
from aiokafka import AIOKafkaConsumer, TopicPartition
from redis.asyncio import Redis

from algotrade.db import asyncpg_url
from algotrade.keys import InstallationKeys
from algotrade.migrations import upgrade
from algotrade.topics import ensure_topics
from algotrade_devstack.infra import (
    Provided,
    drop_database,
    free_port,
    provide_kafka,
    provide_postgres,
    provide_redis,
    spawn,
    tail,
    terminate,
    wait_tcp,
)
from algotrade_devstack.stack import ensure_database
from algotrade_testkit.services import ALL_SCOPES, internal_token
from market_data_service.config import Settings

ROOT = Path(__file__).resolve().parents[1]
T0 = 1_577_836_800  # 2020-01-01T00:00:00Z


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def fmt_us(seconds: float) -> str:
    return f"{seconds * 1e6:8.1f} us"


def report(name: str, samples: list[float]) -> dict[str, float]:
    stats = {
        "p50": pct(samples, 50),
        "p99": pct(samples, 99),
        "median": statistics.median(samples),
        "mean": statistics.fmean(samples),
    }
    print(
        f"  {name:<44} p50 {fmt_us(stats['p50'])}   p99 {fmt_us(stats['p99'])}   "
        f"mean {fmt_us(stats['mean'])}   n={len(samples)}"
    )
    return stats


def bars_body(symbol: str, start: int, n: int) -> bytes:
    bars = []
    for i in range(n):
        price = 100.0 + (i % 977) * 0.01
        bars.append(
            {
                "ts": start + 60 * i,
                "open": price,
                "high": price + 0.5,
                "low": price - 0.5,
                "close": price + 0.25,
                "volume": float(1 + i % 13),
            }
        )
    return orjson.dumps({"symbol": symbol, "timeframe": "1m", "bars": bars})


class RawHttp:
    """A minimal keep-alive HTTP/1.1 client: one request in flight per connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.server_timings = []

    @classmethod
    async def open(cls, port: int) -> RawHttp:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    server_timings: list[float]

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            lowered = line[:15].lower()
            if lowered == b"content-length:":
                length = int(line[15:])
            elif lowered == b"server-timing: " and b"dur=" in line:
                self.server_timings.append(float(line.split(b"dur=")[1]) / 1000)
        body = await self.reader.readexactly(length)
        return status, body

    def close(self) -> None:
        self.writer.close()


def get_request(path: str, token: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n"
    ).encode()


def post_request(path: str, token: str, body: bytes) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def timed(fn: Callable[[], Awaitable[Any]], n: int, warmup: int = 200) -> list[float]:
    for _ in range(warmup):
        await fn()
    samples = []
    clock = time.perf_counter
    for _ in range(n):
        start = clock()
        await fn()
        samples.append(clock() - start)
    return samples


async def main(args: argparse.Namespace) -> None:
    run = uuid.uuid4().hex[:8]
    db_name = f"bench_md_{run}"
    prefix = f"bench:{run}:"
    topic_prefix = f"bench{run}."
    state = Path(tempfile.mkdtemp(prefix="bench-md-"))
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(shutil.rmtree, state, ignore_errors=True)
        pg = provide_postgres(state, os.environ.get("DATABASE_URL"), allow_local=True)
        stack.callback(pg.stop)
        redis_provided = provide_redis(state, os.environ.get("REDIS_URL"), allow_local=True)
        stack.callback(redis_provided.stop)
        kafka = provide_kafka(
            state, os.environ.get("KAFKA_BOOTSTRAP"), cache_root=ROOT / ".algotrade"
        )
        stack.callback(kafka.stop)
        await run_bench(args, state, pg, redis_provided, kafka, run, db_name, prefix, topic_prefix)


async def run_bench(
    args: argparse.Namespace,
    state: Path,
    postgres: Provided,
    redis_provided: Provided,
    kafka: Provided,
    run: str,
    db_name: str,
    prefix: str,
    topic_prefix: str,
) -> None:
    redis_url = redis_provided.url
    keys = InstallationKeys.generate()  # this run's own; no key lives in the repository
    database_url = asyncpg_url(await ensure_database(postgres.url, db_name))
    redis = Redis.from_url(redis_url)
    server: subprocess.Popen[bytes] | None = None
    try:
        await upgrade(database_url, "market_data_service", "market")
        await ensure_topics(kafka.url, topic_prefix)
        port = free_port()
        env = {
            **os.environ,
            "ENVIRONMENT": "local",
            "LOG_LEVEL": "WARNING",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "REDIS_PREFIX": prefix,
            "KAFKA_BOOTSTRAP": kafka.url,
            "KAFKA_TOPIC_PREFIX": topic_prefix,
            "DB_POOL_SIZE": "20",
            **keys.env(None),  # the service verifies internal tokens and signs none
        }
        log = state / "service.log"
        server = spawn(
            [sys.executable, "-m", "market_data_service", "serve", "--port", str(port)], log, env
        )
        wait_tcp("127.0.0.1", port, 30, server)
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            environment="local",
            database_url=database_url,
            redis_url=redis_url,
            redis_prefix=prefix,
            kafka_bootstrap=kafka.url,
            kafka_topic_prefix=topic_prefix,
            **keys.settings_values("gateway"),  # the bench mints tokens as the gateway does
        )
        token = internal_token(settings, "bench", ALL_SCOPES, ttl_seconds=3600)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            for _ in range(100):
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get("/readyz")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            for k in range(2):
                r = await http.post(
                    "/api/market/bars",
                    content=bars_body("LATEST", T0 + k * 5000 * 60, 5000),
                    headers=headers,
                )
                assert r.status_code == 200, r.text
            r = await http.get(
                "/api/market/symbols/LATEST/latest?timeframe=1m&limit=100", headers=headers
            )
            assert r.status_code == 200 and len(r.json()["bars"]) == 100

        print(
            f"market data benchmark (run {run}; {os.cpu_count()} CPUs; load average "
            f"{os.getloadavg()[0]:.2f} at start; window capacity 10,000)"
        )
        kind = "STAND-IN, not the real broker: " if kafka.stand_in else ""
        print(f"  kafka:    {kind}{kafka.source}")
        print(f"  postgres: {postgres.source}")
        print(f"  redis:    {redis_provided.source}")
        results: dict[str, dict[str, float]] = {}
        n = args.reads
        print("\nlatest-100 read (window of 10,000 1m bars)")
        key = f"{prefix}md:w:LATEST:1m"
        from algotrade.windows import SlidingWindows

        windows = SlidingWindows(redis, prefix=prefix)
        results["redis"] = report(
            "redis floor: ZRANGE key -100 -1 (redis-py)",
            await timed(lambda: redis.zrange(key, -100, -1), n),
        )
        results["service_read"] = report(
            "redis: SlidingWindows.latest_raw (+ warm marker)",
            await timed(lambda: windows.latest_raw("LATEST", "1m", 100), n),
        )

        gc.collect()

        raw_get = get_request("/api/market/symbols/LATEST/latest?timeframe=1m&limit=100", token)
        conn = await RawHttp.open(port)
        status, body = await conn.request(raw_get)
        assert status == 200 and body.count(b'"ts"') == 100, body[:200]
        results["http1"] = report(
            "HTTP loopback, 1 connection", await timed(lambda: conn.request(raw_get), n)
        )
        results["handler"] = report(
            "handler in the server (Server-Timing, same run)", conn.server_timings[-n:]
        )
        conn.close()

        conns = [await RawHttp.open(port) for _ in range(32)]
        per_conn = max(50, n // 32)
        samples: list[float] = []

        async def worker(c: RawHttp) -> None:
            for _ in range(50):
                await c.request(raw_get)
            for _ in range(per_conn):
                start = time.perf_counter()
                await c.request(raw_get)
                samples.append(time.perf_counter() - start)

        started = time.perf_counter()
        await asyncio.gather(*(worker(c) for c in conns))
        elapsed = time.perf_counter() - started
        results["http32"] = report("HTTP loopback, 32 concurrent connections", samples)
        rate = len(conns) * (per_conn + 50) / elapsed
        print(f"  {'32 connections: throughput':<44} {rate:,.0f} req/s")
        for c in conns:
            c.close()
        floor, handler, http1 = (results[k]["p50"] for k in ("redis", "handler", "http1"))
        print(
            "  (handler: the route function, auth check to response body, timed inside the "
            "server on the 1-connection requests)"
        )
        print(
            f"  ratios (p50): handler/redis floor {handler / floor:.1f}x, "
            f"HTTP 1 conn/redis floor {http1 / floor:.1f}x, "
            f"HTTP 1 conn/handler {http1 / handler:.1f}x"
        )
        print(
            f"  goal p99 < 1 ms at one connection: "
            f"{'met' if results['http1']['p99'] < 0.001 else 'NOT met'} "
            f"({results['http1']['p99'] * 1e3:.3f} ms)"
        )

        # -- ingestion -------------------------------------------------------------------
        batch = 5000
        per_client = args.bars // args.clients // batch
        total = per_client * batch * args.clients
        print(
            f"\ningestion: {total:,} bars as {total // batch} batches of {batch:,} via POST "
            f"/api/market/bars, {args.clients} concurrent clients (each its own series)"
        )
        bodies = [
            [
                post_request(
                    "/api/market/bars", token, bars_body(f"ING-{c}", T0 + b * batch * 60, batch)
                )
                for b in range(per_client)
            ]
            for c in range(args.clients)
        ]
        pg = await asyncpg.connect(database_url.replace("+asyncpg", ""))
        latencies: list[float] = []

        async def pusher(requests: list[bytes]) -> None:
            c = await RawHttp.open(port)
            for raw in requests:
                start = time.perf_counter()
                status, body = await c.request(raw)
                latencies.append(time.perf_counter() - start)
                assert status == 200, body[:300]
            c.close()

        gc.collect()
        pids = component_pids(server.pid, state, redis_url, kafka)
        cpu_before = {name: cpu_seconds(p) for name, p in pids.items()}
        load_before = os.getloadavg()[0]
        started = time.perf_counter()
        await asyncio.gather(*(pusher(b) for b in bodies))
        acked = time.perf_counter() - started
        pending = "SELECT count(*) FROM market.outbox WHERE published_at IS NULL"
        while await pg.fetchval(pending):  # noqa: ASYNC110 - polling another process's work
            await asyncio.sleep(0.01)
        relayed = time.perf_counter() - started
        events = await pg.fetchval("SELECT count(*) FROM market.outbox")
        print(f"  {'all batches acknowledged':<44} {acked:6.2f} s   {total / acked:>10,.0f} bars/s")
        print(
            f"  {'... and every event published to Kafka':<44} {relayed:6.2f} s   "
            f"{total / relayed:>10,.0f} bars/s   ({events} events of <=500 bars)"
        )
        report("batch latency (5,000 bars)", latencies)
        print(
            f"  {'load average (1 min) before / after':<44} "
            f"{load_before:.2f} / {os.getloadavg()[0]:.2f}"
        )
        print(
            f"  goal >= 50,000 bars/s: {'met' if total / relayed >= 50_000 else 'NOT met'} "
            f"(end to end incl. Kafka)"
        )
        spent = {name: cpu_seconds(p) - cpu_before[name] for name, p in pids.items()}
        for name, seconds in spent.items():
            print(
                f"  {'CPU time, ' + name:<44} {seconds:6.2f} s   "
                f"{seconds / total * 1e6:>7.1f} us/bar"
            )
        busy = sum(spent.values())
        print(
            f"  {'CPU time, all of the above':<44} {busy:6.2f} s   "
            f"{busy / total * 1e6:>7.1f} us/bar -> {total / busy:,.0f} bars per CPU-second"
        )
        published, retained, kafka_bars = await kafka_counts(
            kafka.url, f"{topic_prefix}market.bars.v1"
        )
        stored = await pg.fetchval("SELECT count(*) FROM market.bars WHERE symbol LIKE 'ING-%'")
        held = (
            "the mock cluster still holds, keeping 5 MB per partition"
            if kafka.stand_in
            else "the broker holds (it keeps everything within the topic's 7-day retention)"
        )
        print(
            f"  check: {stored:,} ING bars in history; {published} of {events} outbox events "
            f"on Kafka (high watermarks); {retained} events, {kafka_bars:,} bars, read back from "
            f"what {held}"
        )

        # -- replay ----------------------------------------------------------------------
        replay_bars = min(per_client * batch, 100_000)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            started = time.perf_counter()
            r = await http.post(
                "/api/market/replays",
                json={
                    "symbol": "ING-0",
                    "timeframe": "1m",
                    "speed": "max",
                    "end": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(T0 + replay_bars * 60)),
                },
                headers=headers,
            )
            assert r.status_code == 201, r.text
            replay_id = r.json()["id"]
            while True:
                body = (await http.get(f"/api/market/replays/{replay_id}", headers=headers)).json()
                if body["state"] != "running":
                    break
                await asyncio.sleep(0.02)
            elapsed = time.perf_counter() - started
        print(f"\nreplay at speed=max: {body['bars_emitted']:,} bars ({body['state']})")
        rate = body["bars_emitted"] / elapsed
        print(
            f"  {'replayed into history + window + outbox':<44} {elapsed:6.2f} s   "
            f"{rate:>10,.0f} bars/s"
        )
        await pg.close()
    finally:
        if server is not None:
            terminate(server)
            if server.returncode not in (0, -15, None) and args.verbose:
                print(tail(state / "service.log"))
        keys = [k async for k in redis.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
        await drop_database(postgres.url, db_name)


async def kafka_counts(bootstrap: str, topic: str) -> tuple[int, int, int]:
    """(published, retained, bars in retained) on ``topic``.

    Published is the sum of the partitions' high watermarks, retained what the log still holds
    from its start offsets: all of it on a real broker within retention, at most 5 MB per
    partition on librdkafka's mock cluster (``rd_kafka_mock_partition``: max_size).
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.beginning_offsets(partitions)
        for tp in partitions:
            consumer.seek(tp, starts[tp])
        retained = sum(ends[tp] - starts[tp] for tp in partitions)
        messages = bars = idle = 0
        while messages < retained and idle < 20:
            batches = await consumer.getmany(timeout_ms=500, max_records=1000)
            idle = 0 if batches else idle + 1
            for records in batches.values():
                for record in records:
                    messages += 1
                    bars += len(orjson.loads(record.value)["payload"]["bars"])
        return sum(ends.values()), retained, bars
    finally:
        await consumer.stop()


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
    return total


def component_pids(
    server_pid: int, state: Path, redis_url: str, kafka: Provided
) -> dict[str, list[int]]:
    """Processes whose CPU time the ingestion figure accounts for, told apart from servers a
    test run may have alongside: the embedded PostgreSQL's postmaster and backends (else every
    ``postgres`` process), the ``redis-server`` on this bench's port, the embedded broker."""
    pids: dict[str, list[int]] = {"service": [server_pid], "postgres": [], "redis": []}
    postmaster = state / "pgdata" / "postmaster.pid"
    if postmaster.exists():
        pid = int(postmaster.read_text().split()[0])
        pids["postgres"] = [pid, *(c.pid for c in psutil.Process(pid).children(recursive=True))]
    redis_port = f":{redis_url.rsplit(':', 1)[1].split('/')[0]}"
    for proc in psutil.process_iter(["name", "cmdline"]):
        name = proc.info["name"] or ""
        if name.startswith("postgres") and not postmaster.exists():
            pids["postgres"].append(proc.pid)
        elif name.startswith("redis-server") and any(
            arg.endswith(redis_port) or arg == redis_port[1:] for arg in proc.info["cmdline"] or ()
        ):
            pids["redis"].append(proc.pid)
    broker = kafka.handle.proc if kafka.handle is not None else None
    if broker is not None:
        pids["kafka broker"] = [broker.pid]
    return pids


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=300_000, help="bars to ingest")
    parser.add_argument("--clients", type=int, default=4, help="concurrent ingest clients")
    parser.add_argument("--reads", type=int, default=5000, help="samples per read figure")
    parser.add_argument("--verbose", action="store_true")
    uvloop.install()
    asyncio.run(main(parser.parse_args()))
