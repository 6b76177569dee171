"""Fixtures: the platform's HTTP services and the gateway in front of them, for fuzzing.

Each app runs behind a real uvicorn server on a free port (`fuzz_testkit.ServersThread`). They
share one database (a schema each, as under `make run`), the test run's Redis, Kafka and S3, and
keys generated for this run. The gateway's upstream URLs point at those servers, so a request
through it is really proxied and its internal token really verified.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).parent))  # tests import fuzz_testkit

from fuzz_testkit import SERVICES, Platform, ServersThread, Target, build_app

from algotrade.config import ServiceSettings
from algotrade.migrations import upgrade
from algotrade_devstack.infra import admin_connection, drop_database, free_port
from algotrade_testkit.plugin import unique
from algotrade_testkit.services import internal_token, key_settings

SCHEMAS = {
    "api-gateway": ("api_gateway", "gateway"),
    "strategy-service": ("strategy_service", "strategy"),
    "market-data-service": ("market_data_service", "market"),
    "backtesting-service": ("backtesting_service", "backtest"),
    "forward-test-service": ("forward_test_service", "forward"),
    "notification-service": ("notification_service", "notify"),
    "analytics-service": ("analytics_service", "analytics"),
}
FUZZ_PASSWORD = "fuzzing-is-not-a-crime-42"


async def _create_database(admin_url: str) -> tuple[str, str]:
    name = unique("fuzz_")
    conn = await admin_connection(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = make_url(admin_url).set(database=name, drivername="postgresql+asyncpg")
    return name, url.render_as_string(hide_password=False)


def _register(gateway_url: str) -> str:
    """A real account, registered and logged in through the gateway: its access token."""
    credentials = {"email": f"{unique('fuzz')}@example.com", "password": FUZZ_PASSWORD}
    with httpx.Client(base_url=gateway_url, timeout=30) as client:
        client.post("/api/auth/register", json=credentials).raise_for_status()
        login = client.post("/api/auth/login", json=credentials)
        login.raise_for_status()
        token: str = login.json()["access_token"]
        return token


@pytest.fixture(scope="module")
async def platform(
    postgres_admin_url: str,
    redis_url: str,
    kafka_bootstrap: str,
    s3_endpoint: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Platform]:
    name, database_url = await _create_database(postgres_admin_url)
    try:
        for package, schema in SCHEMAS.values():
            await upgrade(database_url, package, schema)
        ports = {service: free_port() for service in SCHEMAS}
        urls = {service: f"http://127.0.0.1:{port}" for service, port in ports.items()}
        common: dict[str, Any] = {
            "database_url": database_url,
            "redis_url": redis_url,
            "redis_prefix": unique("fuzz:") + ":",
            "kafka_bootstrap": kafka_bootstrap,
            "kafka_topic_prefix": unique("fuzz") + ".",
            "s3_endpoint": s3_endpoint,
            "s3_bucket": unique("fuzz-"),
        }
        unlimited = {"limit": 1_000_000, "period_seconds": 1, "fail_open": True}
        apps = {
            "strategy-service": build_app("strategy-service", **common),
            "market-data-service": build_app(
                "market-data-service",
                **common,
                import_spool_dir=tmp_path_factory.mktemp("fuzz-spool"),
            ),
            "backtesting-service": build_app(
                "backtesting-service",
                **common,
                strategy_service_url=urls["strategy-service"],
                market_data_service_url=urls["market-data-service"],
            ),
            "forward-test-service": build_app(
                "forward-test-service",
                **common,
                strategy_service_url=urls["strategy-service"],
                market_data_service_url=urls["market-data-service"],
            ),
            "notification-service": build_app(
                "notification-service",
                **common,
                forward_test_service_url=urls["forward-test-service"],
                backtesting_service_url=urls["backtesting-service"],
                market_data_service_url=urls["market-data-service"],
            ),
            "analytics-service": build_app(
                "analytics-service",
                **common,
                market_data_service_url=urls["market-data-service"],
            ),
            "api-gateway": build_app(
                "api-gateway",
                **common,
                password_hash_time_cost=1,
                password_hash_memory_kib=1024,
                password_hash_parallelism=1,
                # The limiter and the login throttle have tests of their own; here they would
                # only turn generated requests into 429s before a service sees them.
                rate_limits=dict.fromkeys(("auth", "read", "write", "backtest_submit"), unlimited),
                login_max_failures_per_account=1_000_000,
                login_max_failures_per_address=1_000_000,
                strategy_service_url=urls["strategy-service"],
                market_data_service_url=urls["market-data-service"],
                backtesting_service_url=urls["backtesting-service"],
                forward_test_service_url=urls["forward-test-service"],
                notification_service_url=urls["notification-service"],
                analytics_service_url=urls["analytics-service"],
            ),
        }
        with ServersThread({service: (apps[service], ports[service]) for service in apps}):
            user_token = await asyncio.to_thread(_register, urls["api-gateway"])
            # Any service verifies an internal token signed with this run's keys.
            keys = ServiceSettings(environment="test", **key_settings())
            token = internal_token(keys, "fuzz-user", ttl_seconds=900)
            auth = {"Authorization": f"Bearer {token}"}
            services = {service: Target(service, urls[service], auth) for service in SERVICES}
            gateway = Target(
                "api-gateway", urls["api-gateway"], {"Authorization": f"Bearer {user_token}"}
            )
            yield Platform(services=services, gateway=gateway)
    finally:
        await drop_database(postgres_admin_url, name)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """One node id per API operation again (``test_x[GET /api/strategies]``): schemathesis 4.32
    puts the operation in an item's name only, and pytest 9.2 builds node ids from the
    function's name and parametrization, so all operations of a schema shared one id (and
    ``-k``, ``--lf`` and reports could not tell them apart)."""
    for item in items:
        label = getattr(item, "operation_label", None)  # a schemathesis operation's test
        if isinstance(item, pytest.Function) and label and item.nodeid.endswith(item.originalname):
            item._id = item.parent.id.child(item.originalname).with_params(label)  # type: ignore[union-attr]
