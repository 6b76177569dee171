"""Rate limits: GCRA in Redis, headers, route classes, and what happens without Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from algotrade.errors import DependencyUnavailable
from algotrade_devstack.infra import free_port
from api_gateway.config import RateLimitRule
from api_gateway.ratelimit import RateLimiter, RedisHealth

pytestmark = pytest.mark.timeout(60)


def _limiter(redis: Redis, prefix: str, **rules: RateLimitRule) -> RateLimiter:
    base = {
        "auth": RateLimitRule(limit=2, period_seconds=60, fail_open=False),
        "read": RateLimitRule(limit=3, period_seconds=60, fail_open=True),
        "write": RateLimitRule(limit=3, period_seconds=60, fail_open=True),
        "backtest_submit": RateLimitRule(limit=1, period_seconds=60, fail_open=False),
    }
    return RateLimiter(redis, prefix=prefix, rules={**base, **rules}, health=RedisHealth(1.0))


async def test_gcra_allows_a_burst_then_spaces_requests(
    redis_client: Redis, redis_prefix: str
) -> None:
    limiter = _limiter(redis_client, redis_prefix)
    decisions = [await limiter.hit("read", "u:1") for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions[:3]] == [2, 1, 0]
    denied = decisions[3]
    # One request per 20 s is the sustained rate; the next slot opens within that.
    assert 19 < denied.retry_after <= 20
    assert 59 < denied.reset_after <= 60
    assert denied.headers()["X-RateLimit-Remaining"] == "0"
    # Subjects and classes have their own buckets.
    assert (await limiter.hit("read", "u:2")).remaining == 2
    assert (await limiter.hit("write", "u:1")).remaining == 2
    keys = [k.decode() async for k in redis_client.scan_iter(match=f"{redis_prefix}*")]
    assert keys and all(k.startswith(f"{redis_prefix}gateway:rl:") for k in keys)


async def test_bucket_refills_over_time(redis_client: Redis, redis_prefix: str) -> None:
    limiter = _limiter(
        redis_client, redis_prefix, read=RateLimitRule(limit=2, period_seconds=0.2, fail_open=True)
    )
    assert (await limiter.hit("read", "u:1")).allowed
    assert (await limiter.hit("read", "u:1")).allowed
    assert not (await limiter.hit("read", "u:1")).allowed
    await asyncio.sleep(0.12)  # one emission interval (0.1 s) later a slot is free again
    assert (await limiter.hit("read", "u:1")).allowed


def _leasing(
    redis: Redis, prefix: str, limit: int, lease_seconds: float, health: RedisHealth | None = None
) -> RateLimiter:
    """A limiter as a gateway instance runs it: reads leased, at most 16 or 2% of ``limit``.

    The period is long enough that a request's share of it (``period / limit``) outlasts any
    lease's lifetime: counting leased requests at the lifetime's end then changes no figure."""
    return RateLimiter(
        redis,
        prefix=prefix,
        rules={"read": RateLimitRule(limit=limit, period_seconds=864_000, fail_open=False)},
        health=health or RedisHealth(60.0),
        lease_seconds=lease_seconds,
        max_lease=16,
    )


def _exact(redis: Redis, prefix: str, limit: int) -> RateLimiter:
    """A limiter without leases on `_leasing`'s rule: reads what Redis holds, one request."""
    return _limiter(
        redis,
        prefix,
        read=RateLimitRule(limit=limit, period_seconds=864_000, fail_open=False),
    )


async def test_gateway_instances_with_leases_never_admit_more_than_the_limit(
    redis_client: Redis, redis_prefix: str
) -> None:
    first, second = (_leasing(redis_client, redis_prefix, 200, 5.0) for _ in range(2))
    admitted = 0
    for _ in range(150):  # both instances busy with the same subject, one request each in turn
        for instance in (first, second):
            admitted += sum(
                d.allowed
                for d in await asyncio.gather(*(instance.hit("read", "u:1") for _ in range(2)))
            )
    # Every admitted request was counted in Redis; at most what leases still hold is lost.
    assert 200 - 2 * 4 <= admitted <= 200


async def test_a_busy_subject_is_served_from_its_lease_while_redis_is_unusable(
    redis_client: Redis, redis_prefix: str
) -> None:
    health = RedisHealth(60.0)
    limiter = _leasing(redis_client, redis_prefix, 10_000, 5.0, health)
    decisions = [await limiter.hit("read", "u:1") for _ in range(4)]  # leases of 1, 2, then 4
    health.failed(ConnectionError("redis went away"))  # the class fails closed
    decisions += [await limiter.hit("read", "u:1") for _ in range(3)]  # the lease's other 3
    assert all(d.allowed and d.enforced for d in decisions)
    # The headers count down as Redis would have, one request at a time.
    assert [d.remaining for d in decisions] == list(range(9_999, 9_992, -1))
    with pytest.raises(DependencyUnavailable):
        await limiter.hit("read", "u:1")


async def test_a_crowd_of_requests_holds_at_most_one_lease(
    redis_client: Redis, redis_prefix: str
) -> None:
    leasing = _leasing(redis_client, redis_prefix, 10_000, 5.0)
    exact = _exact(redis_client, redis_prefix, 10_000)
    for _ in range(1 + 2 + 4 + 8 + 16):  # leases up to the largest (16), each used up
        assert (await leasing.hit("read", "u:1")).allowed
    crowd = await asyncio.gather(*(leasing.hit("read", "u:1") for _ in range(32)))
    assert all(d.allowed for d in crowd)
    # One of them took a lease of 16, the others one request each: 15 are held, not 31 * 16.
    assert (await exact.hit("read", "u:1")).remaining == 10_000 - 31 - 32 - 15 - 1


async def test_unused_leased_requests_go_back_to_redis(
    redis_client: Redis, redis_prefix: str
) -> None:
    leasing = _leasing(redis_client, redis_prefix, 100_000, 1.0)
    exact = _exact(redis_client, redis_prefix, 100_000)
    for _ in range(4):  # a lease of 4 is taken on the fourth request: 3 left unused
        assert (await leasing.hit("read", "u:1")).allowed
    held = await exact.hit("read", "u:1")
    assert held.remaining == 100_000 - 4 - 3 - 1
    await asyncio.sleep(1.05)  # the lease expires; its next call gives the 3 back
    assert (await leasing.hit("read", "u:1")).allowed  # and takes a lease of 2 (1 unused)
    after = await exact.hit("read", "u:1")
    assert after.remaining == 100_000 - 5 - 1 - 2


async def test_proxied_requests_carry_limit_headers_and_get_429_past_the_limit(
    start_gateway: Callable[..., Any], issue_token: Callable[..., str]
) -> None:
    rules = {"read": {"limit": 2, "period_seconds": 60, "fail_open": True}}
    async with start_gateway(rate_limits=rules) as (_, client):
        alice = {"Authorization": f"Bearer {issue_token(user_id='alice')}"}
        first = await client.get("/api/strategies", headers=alice)
        assert first.headers["x-ratelimit-limit"] == "2"
        assert first.headers["x-ratelimit-remaining"] == "1"
        assert int(first.headers["x-ratelimit-reset"]) in (30, 31)
        await client.get("/api/strategies", headers=alice)
        refused = await client.get("/api/strategies", headers=alice)
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.headers["retry-after"] == "30"
        assert refused.headers["x-ratelimit-remaining"] == "0"
        # Bob has his own budget.
        bob = {"Authorization": f"Bearer {issue_token(user_id='bob')}"}
        assert (await client.get("/api/strategies", headers=bob)).status_code == 200


async def test_every_answer_of_a_limited_route_carries_limit_headers_errors_included(
    start_gateway: Callable[..., Any], issue_token: Callable[..., str], dead_url: str
) -> None:
    rules = {"read": {"limit": 100, "period_seconds": 60, "fail_open": True}}
    async with start_gateway(rate_limits=rules, market_data_service_url=dead_url) as (_, client):
        alice = {"Authorization": f"Bearer {issue_token(user_id='alice')}"}
        narrow = {
            "Authorization": f"Bearer {issue_token(user_id='carol', scopes=frozenset({'x'}))}"
        }
        answers = {
            "upstream 404": await client.get("/api/backtests/status/404", headers=alice),
            "upstream 422": await client.get("/api/backtests/status/422", headers=alice),
            "gateway 502": await client.get("/api/market/x", headers=alice),
            "gateway 403": await client.get("/api/strategies", headers=narrow),
        }
        expected = {
            "upstream 404": 404,
            "upstream 422": 422,
            "gateway 502": 502,
            "gateway 403": 403,
        }
        assert {k: r.status_code for k, r in answers.items()} == expected
        for name, response in answers.items():
            assert response.headers.get("x-ratelimit-limit") == "100", name
            assert int(response.headers["x-ratelimit-remaining"]) < 100, name


async def test_backtest_submissions_have_their_own_class(
    start_gateway: Callable[..., Any], issue_token: Callable[..., str]
) -> None:
    rules = {"backtest_submit": {"limit": 1, "period_seconds": 60, "fail_open": False}}
    async with start_gateway(rate_limits=rules) as (_, client):
        auth = {"Authorization": f"Bearer {issue_token()}"}
        assert (await client.post("/api/backtests", json={}, headers=auth)).status_code == 200
        assert (await client.post("/api/backtests", json={}, headers=auth)).status_code == 429
        # Reading backtests and other writes are other classes.
        assert (await client.get("/api/backtests/1", headers=auth)).status_code == 200
        assert (await client.delete("/api/backtests/1", headers=auth)).status_code == 200


async def test_without_redis_reads_fail_open_logins_fail_closed_and_readyz_says_so(
    start_gateway: Callable[..., Any], issue_token: Callable[..., str]
) -> None:
    async with start_gateway(redis_url=f"redis://127.0.0.1:{free_port()}/0") as (_, client):
        auth = {"Authorization": f"Bearer {issue_token()}"}
        read = await client.get("/api/strategies", headers=auth)
        assert read.status_code == 200
        assert "x-ratelimit-limit" not in read.headers  # nothing was counted
        assert (await client.post("/api/strategies", json={}, headers=auth)).status_code == 200
        submit = await client.post("/api/backtests", json={}, headers=auth)
        assert submit.status_code == 503

        login = await client.post(
            "/api/auth/login", json={"email": "a@example.com", "password": "whatever123"}
        )
        assert login.status_code == 503
        assert "rate limiting" in login.json()["detail"]

        ready = await client.get("/readyz")
        assert ready.status_code == 200  # degraded, still serving
        body = ready.json()
        assert body["status"] == "degraded"
        assert body["checks"]["redis"].startswith("down")
        assert body["rate_limiting"]["fails_open"] == ["read", "write"]
        assert body["rate_limiting"]["fails_closed"] == ["auth", "backtest_submit"]
        assert "fails open for read" in body["rate_limiting"]["detail"]
        assert "logins are refused" in body["rate_limiting"]["detail"]


async def test_readyz_is_503_when_postgres_is_down(start_gateway: Callable[..., Any]) -> None:
    dead_db = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nothing"
    async with start_gateway(database_url=dead_db) as (_, client):
        response = await client.get("/readyz")
        assert response.status_code == 503
        assert "postgres is down" in response.json()["detail"]
