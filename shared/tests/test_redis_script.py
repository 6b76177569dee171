"""The rate limiter's pipelined script runner against a real Redis."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis
from redis.asyncio.connection import UnixDomainSocketConnection
from redis.exceptions import ResponseError

from algotrade.redis_script import PipelinedScript
from algotrade_devstack.infra import free_port

pytestmark = pytest.mark.timeout(30)

# KEYS[1] counter; ARGV[1] step. Returns {new value, the step as a string}.
INCR_BY = "return {redis.call('INCRBY', KEYS[1], ARGV[1]), ARGV[1]}"


def script_for(redis: Redis, source: str = INCR_BY) -> PipelinedScript:
    script = PipelinedScript.for_client(redis, source, timeout=2.0)
    assert script is not None
    return script


async def test_concurrent_calls_share_one_connection_and_each_gets_its_own_reply(
    redis_client: Redis, redis_prefix: str
) -> None:
    await redis_client.script_flush()  # the first call finds no script: EVAL, then EVALSHA
    connections_before = (await redis_client.info("stats"))["total_connections_received"]
    script = script_for(redis_client)
    key = f"{redis_prefix}n"
    replies = await asyncio.gather(*(script(keys=[key], args=[i]) for i in range(1, 51)))
    assert [int(r[1]) for r in replies] == list(range(1, 51))
    assert sorted(r[0] for r in replies)[-1] == sum(range(1, 51))
    connections_after = (await redis_client.info("stats"))["total_connections_received"]
    assert connections_after - connections_before == 1
    await script.aclose()


async def test_it_uses_the_clients_database_and_password_and_reconnects(
    redis_client: Redis, redis_prefix: str
) -> None:
    kwargs = redis_client.connection_pool.connection_kwargs
    other_db = Redis(host=kwargs["host"], port=kwargs["port"], db=3)
    script = script_for(other_db)
    key = f"{redis_prefix}db"
    assert (await script(keys=[key], args=[5]))[0] == 5
    assert await other_db.get(key) == b"5"
    assert await redis_client.get(key) is None  # db 0 untouched
    # The connection is killed: the next call connects again.
    for client in await other_db.client_list():
        if client.get("db") == "3" and client.get("cmd") in ("evalsha", "eval"):
            await other_db.client_kill_filter(_id=client["id"])
    await asyncio.sleep(0.05)
    assert (await script(keys=[key], args=[1]))[0] == 6
    await other_db.delete(key)
    await other_db.aclose()
    await script.aclose()

    with_password = Redis(host=kwargs["host"], port=kwargs["port"], password="not-the-password")
    with pytest.raises(ResponseError):
        await script_for(with_password)(keys=[key], args=[1])
    await with_password.aclose()


async def test_unreachable_or_failing_redis_raises_what_the_limiter_handles(
    redis_client: Redis, redis_prefix: str
) -> None:
    nowhere = Redis(host="127.0.0.1", port=free_port())
    with pytest.raises(OSError):
        await script_for(nowhere)(keys=["k"], args=[1])
    with pytest.raises(ResponseError):
        await script_for(redis_client, "return redis.call('NOSUCHCOMMAND')")(keys=["k"], args=[])


def test_a_unix_socket_client_stays_with_redis_py() -> None:
    client = Redis(unix_socket_path="/tmp/nothing.sock")
    assert client.connection_pool.connection_class is UnixDomainSocketConnection
    assert PipelinedScript.for_client(client, INCR_BY, timeout=1.0) is None
