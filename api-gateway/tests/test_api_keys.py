"""API keys: shown once, stored hashed, scoped, revocable; accepted as bearer or X-API-Key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from algotrade import migrations
from algotrade.db import build_engine, build_session_factory
from algotrade.errors import Unauthorized
from api_gateway.api_keys import ApiKeys
from api_gateway.models import ApiKey, User

pytestmark = pytest.mark.timeout(60)

PASSWORD = "correct horse battery"


@pytest.fixture
async def session_headers(identity_client: httpx.AsyncClient) -> dict[str, str]:
    await identity_client.post(
        "/api/auth/register", json={"email": "agent-owner@example.com", "password": PASSWORD}
    )
    login = await identity_client.post(
        "/api/auth/login", json={"email": "agent-owner@example.com", "password": PASSWORD}
    )
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


async def _create(
    client: httpx.AsyncClient, headers: dict[str, str], scopes: list[str], name: str = "agent"
) -> dict[str, str]:
    response = await client.post(
        "/api/api-keys", json={"name": name, "scopes": scopes}, headers=headers
    )
    assert response.status_code == 201, response.text
    created: dict[str, str] = response.json()
    return created


async def test_key_is_shown_once_and_listed_without_its_secret(
    identity_client: httpx.AsyncClient, session_headers: dict[str, str]
) -> None:
    created = await _create(
        identity_client, session_headers, ["strategies:read", "market:write", "market:write"]
    )
    assert created["key"].startswith(f"atk_{created['id']}_")
    assert created["scopes"] == ["market:write", "strategies:read"]
    listed = await identity_client.get("/api/api-keys", headers=session_headers)
    assert listed.status_code == 200
    body = listed.json()
    assert body["count"] == 1
    assert body["data"][0]["prefix"] == f"atk_{created['id']}"
    assert "key" not in body["data"][0]
    assert created["key"].split("_", 2)[2] not in listed.text


async def test_key_authenticates_as_bearer_or_header_and_its_scopes_reach_the_service(
    identity_client: httpx.AsyncClient, session_headers: dict[str, str]
) -> None:
    created = await _create(identity_client, session_headers, ["strategies:read"])
    for headers in ({"Authorization": f"Bearer {created['key']}"}, {"X-API-Key": created["key"]}):
        response = await identity_client.get("/api/strategies/7", headers=headers)
        assert response.status_code == 200, response.text
        principal = response.json()["principal"]
        assert principal["scopes"] == ["strategies:read"]
        assert principal["api_key_id"] == created["id"]
    me = await identity_client.get("/api/auth/me", headers={"X-API-Key": created["key"]})
    assert me.json()["scopes"] == ["strategies:read"]
    assert me.json()["api_key_id"] == created["id"]


async def test_key_scopes_limit_what_it_may_do(
    identity_client: httpx.AsyncClient, session_headers: dict[str, str]
) -> None:
    key = {"X-API-Key": (await _create(identity_client, session_headers, ["market:write"]))["key"]}
    assert (await identity_client.post("/api/market/bars", json={}, headers=key)).status_code == 200
    for method, path in (
        ("GET", "/api/market/bars"),  # write does not imply read
        ("GET", "/api/strategies"),
        ("POST", "/api/backtests"),
    ):
        response = await identity_client.request(method, path, headers=key)
        assert response.status_code == 403, (method, path)
        assert "scope" in response.json()["detail"]


async def test_an_agents_command_list_needs_a_key_that_reads_agents(
    identity_client: httpx.AsyncClient, session_headers: dict[str, str]
) -> None:
    path = "/api/agents/01J0000000000000000000000A/queue"
    reader = {
        "X-API-Key": (await _create(identity_client, session_headers, ["agents:read"]))["key"]
    }
    forwarded = await identity_client.get(path, params={"state": "queued"}, headers=reader)
    assert forwarded.status_code == 200, forwarded.text
    assert forwarded.json()["path"] == path
    assert forwarded.json()["principal"]["scopes"] == ["agents:read"]
    writer = await _create(identity_client, session_headers, ["agents:write", "sessions:read"])
    refused = await identity_client.get(path, headers={"X-API-Key": writer["key"]})
    assert refused.status_code == 403
    assert "scope" in refused.json()["detail"]
    signed_in = await identity_client.get(path, headers=session_headers)
    assert signed_in.status_code == 200, signed_in.text


async def test_revoked_or_forged_keys_fail(
    identity_client: httpx.AsyncClient, session_headers: dict[str, str]
) -> None:
    created = await _create(identity_client, session_headers, ["strategies:read"])
    key = {"X-API-Key": created["key"]}
    assert (await identity_client.get("/api/strategies", headers=key)).status_code == 200

    forged = {"X-API-Key": f"atk_{created['id']}_{'A' * 43}"}
    assert (await identity_client.get("/api/strategies", headers=forged)).status_code == 401

    revoked = await identity_client.delete(
        f"/api/api-keys/{created['id']}", headers=session_headers
    )
    assert revoked.status_code == 204
    refused = await identity_client.get("/api/strategies", headers=key)
    assert refused.status_code == 401
    assert refused.json()["detail"] == "API key revoked"
    listed = (await identity_client.get("/api/api-keys", headers=session_headers)).json()
    assert listed["data"][0]["revoked_at"] is not None

    unknown = await identity_client.delete("/api/api-keys/nope", headers=session_headers)
    assert unknown.status_code == 404


async def test_keys_cannot_manage_keys_and_unknown_scopes_are_refused(
    identity_client: httpx.AsyncClient, session_headers: dict[str, str]
) -> None:
    key = {"X-API-Key": (await _create(identity_client, session_headers, ["market:read"]))["key"]}
    minted = await identity_client.post(
        "/api/api-keys", json={"name": "escalate", "scopes": ["market:write"]}, headers=key
    )
    assert minted.status_code == 403
    assert (await identity_client.get("/api/api-keys", headers=key)).status_code == 403

    unknown = await identity_client.post(
        "/api/api-keys", json={"name": "x", "scopes": ["root:everything"]}, headers=session_headers
    )
    assert unknown.status_code == 422


async def test_rate_limits_count_per_key_not_per_user(
    identity_client: httpx.AsyncClient, session_headers: dict[str, str]
) -> None:
    first = await _create(identity_client, session_headers, ["strategies:read"], name="one")
    second = await _create(identity_client, session_headers, ["strategies:read"], name="two")
    a = await identity_client.get("/api/strategies", headers={"X-API-Key": first["key"]})
    b = await identity_client.get("/api/strategies", headers={"X-API-Key": second["key"]})
    assert a.headers["x-ratelimit-remaining"] == b.headers["x-ratelimit-remaining"] == "1199"


class _Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def keys_db(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """The gateway's tables on a fresh database, with one user."""
    await migrations.upgrade(database_url, "api_gateway", "gateway")
    engine = build_engine(database_url)
    sessions = build_session_factory(engine)
    async with sessions() as session:
        session.add(User(id="user-1", email="keys@example.com", password_hash="x"))
        await session.commit()
    yield sessions
    await engine.dispose()


async def _new_key(keys: ApiKeys, sessions: async_sessionmaker[AsyncSession]) -> tuple[str, str]:
    async with sessions() as session:
        row, full_key = await keys.create(
            session, user_id="user-1", name="agent", scopes=["agents:write"], expires_in_days=None
        )
        await session.commit()
        return row.id, full_key


async def test_keys_in_use_are_reloaded_so_requests_never_wait_for_the_database(
    keys_db: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = _Clock()
    keys = ApiKeys(keys_db, cache_seconds=5, max_per_user=10, clock=clock)
    key_id, full_key = await _new_key(keys, keys_db)
    assert (await keys.authenticate(full_key)).api_key_id == key_id  # loaded on the request
    clock.now += 2.5
    assert await keys.reload_in_use() == 1

    async def no_query(*_: Any) -> None:
        raise AssertionError("a request waited for the database")

    monkeypatch.setattr(keys, "_load", no_query)
    clock.now += 4  # past the first load's 5 s, within the reload's
    assert (await keys.authenticate(full_key)).api_key_id == key_id


async def test_a_key_revoked_by_another_gateway_is_refused_after_the_next_reload(
    keys_db: async_sessionmaker[AsyncSession],
) -> None:
    clock = _Clock()
    keys = ApiKeys(keys_db, cache_seconds=5, max_per_user=10, clock=clock)
    elsewhere = ApiKeys(keys_db, cache_seconds=5, max_per_user=10)
    key_id, full_key = await _new_key(keys, keys_db)
    await keys.authenticate(full_key)
    async with keys_db() as session:
        await elsewhere.revoke(session, user_id="user-1", key_id=key_id)
        await session.commit()
    clock.now += 2.5
    await keys.reload_in_use()
    with pytest.raises(Unauthorized, match="revoked"):
        await keys.authenticate(full_key)


async def test_a_key_revoked_here_while_a_reload_records_its_use_stays_revoked(
    keys_db: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reload read the key's row before the revoke: what it read must not put the key back
    in the cache."""
    clock = _Clock()
    keys = ApiKeys(keys_db, cache_seconds=5, max_per_user=10, clock=clock)
    key_id, full_key = await _new_key(keys, keys_db)
    await keys.authenticate(full_key)
    touch = keys._touch_many
    revoked = []

    async def revoke_meanwhile(key_ids: Any, verified: Any) -> None:
        async with keys_db() as session:
            await keys.revoke(session, user_id="user-1", key_id=key_id)
            await session.commit()
        revoked.append(key_id)
        await touch(key_ids, verified)

    monkeypatch.setattr(keys, "_touch_many", revoke_meanwhile)
    monkeypatch.setattr("api_gateway.api_keys.LAST_USED_RESOLUTION", timedelta(0))
    clock.now += 2.5
    await keys.reload_in_use()
    assert revoked == [key_id]
    with pytest.raises(Unauthorized, match="revoked"):
        await keys.authenticate(full_key)


async def test_keys_reload_a_chunk_at_a_time_each_as_its_row_says(
    keys_db: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("api_gateway.api_keys._RELOAD_CHUNK", 2)  # three keys: two queries
    clock = _Clock()
    keys = ApiKeys(keys_db, cache_seconds=5, max_per_user=10, clock=clock)
    elsewhere = ApiKeys(keys_db, cache_seconds=5, max_per_user=10)
    made = [await _new_key(keys, keys_db) for _ in range(3)]
    for _, full_key in made:
        await keys.authenticate(full_key)
    async with keys_db() as session:
        await elsewhere.revoke(session, user_id="user-1", key_id=made[2][0])
        await session.commit()
    clock.now += 2.5
    assert await keys.reload_in_use() == 3
    for key_id, full_key in made[:2]:
        assert (await keys.authenticate(full_key)).api_key_id == key_id
    with pytest.raises(Unauthorized, match="revoked"):
        await keys.authenticate(made[2][1])


async def test_a_reload_sees_what_changed_in_the_key_s_user_and_keeps_what_did_not(
    keys_db: async_sessionmaker[AsyncSession],
) -> None:
    clock = _Clock()
    keys = ApiKeys(keys_db, cache_seconds=5, max_per_user=10, clock=clock)
    made = [await _new_key(keys, keys_db) for _ in range(2)]
    for _, full_key in made:
        await keys.authenticate(full_key)
    async with keys_db() as session:
        await session.execute(update(User).where(User.id == "user-1").values(roles=["admin"]))
        await session.commit()
    clock.now += 2.5
    assert await keys.reload_in_use() == 2
    for key_id, full_key in made:
        principal = await keys.authenticate(full_key)
        assert (principal.api_key_id, principal.roles) == (key_id, frozenset({"admin"}))
    async with keys_db() as session:
        await session.execute(update(User).where(User.id == "user-1").values(is_active=False))
        await session.commit()
    clock.now += 2.5
    await keys.reload_in_use()
    for _, full_key in made:
        with pytest.raises(Unauthorized):
            await keys.authenticate(full_key)


async def test_the_refresher_reloads_keys_as_they_come_due_soonest_first(
    keys_db: async_sessionmaker[AsyncSession],
) -> None:
    clock = _Clock()
    keys = ApiKeys(keys_db, cache_seconds=5, max_per_user=10, clock=clock)
    made = []
    for _ in range(3):  # loaded a second apart: due a second apart
        made.append(await _new_key(keys, keys_db))
        await keys.authenticate(made[-1][1])
        clock.now += 1
    # now = 3: the first key's verification ends at 5, the second's at 6, the third's at 7
    assert await keys.reload_in_use(due_within=2.5) == 1  # only the first is due
    assert await keys.reload_in_use(due_within=2.5) == 0  # now good until 8
    clock.now += 1.5  # 4.5: the second and the third are due, the second sooner
    assert await keys.reload_in_use(due_within=2.5, at_most=1) == 1
    assert await keys.reload_in_use(due_within=2.5, at_most=1) == 1
    assert await keys.reload_in_use(due_within=2.5) == 0

    async def no_query(*_: Any) -> None:
        raise AssertionError("a request waited for the database")

    clock.now += 3  # 7.5: past every first load (5, 6, 7), within every reload (8, 9.5, 9.5)
    keys._load = no_query  # type: ignore[method-assign]
    for key_id, full_key in made:
        assert (await keys.authenticate(full_key)).api_key_id == key_id


async def test_keys_unused_for_a_while_are_no_longer_reloaded(
    keys_db: async_sessionmaker[AsyncSession],
) -> None:
    clock = _Clock()
    keys = ApiKeys(keys_db, cache_seconds=5, max_per_user=10, keep_fresh_seconds=60, clock=clock)
    _, full_key = await _new_key(keys, keys_db)
    await keys.authenticate(full_key)
    clock.now += 30
    assert await keys.reload_in_use() == 1
    clock.now += 31
    assert await keys.reload_in_use() == 0
    await keys.authenticate(full_key)  # used again: loaded on the request, kept fresh again
    assert await keys.reload_in_use() == 1


async def test_the_reload_records_use_at_most_once_a_minute(
    keys_db: async_sessionmaker[AsyncSession],
) -> None:
    clock = _Clock()
    keys = ApiKeys(keys_db, cache_seconds=5, max_per_user=10, clock=clock)
    key_id, full_key = await _new_key(keys, keys_db)

    async def last_used() -> datetime | None:
        async with keys_db() as session:
            return await session.scalar(select(ApiKey.last_used_at).where(ApiKey.id == key_id))

    await keys.authenticate(full_key)
    first = await last_used()
    assert first is not None
    clock.now += 2.5
    await keys.reload_in_use()  # used since the last reload, but recorded under a minute ago
    assert await last_used() == first
    long_ago = first - timedelta(minutes=5)
    async with keys_db() as session:
        await session.execute(
            update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=long_ago)
        )
        await session.commit()
    clock.now += 2.5
    await keys.reload_in_use()  # not used since the last reload: nothing to record
    assert await last_used() == long_ago
    await keys.authenticate(full_key)
    clock.now += 2.5
    await keys.reload_in_use()
    recorded = await last_used()
    assert recorded is not None and recorded > long_ago
