"""Tenancy of market data: every write endpoint keeps to its caller's own series.

Alice owns ``PRIV`` (private) and ``SHRD`` (shared read-only with Bob); the platform owns the
reference series ``REF``. Bob can never write Alice's series (404 while invisible to him, 403
once shared), can read what she shared, and writing a symbol of the same name creates his own
series without touching hers. The platform's data is read-only for users.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from market_data_testkit import Service

from algotrade.auth import MARKET_ADMIN_ROLE, InternalTokens, Principal
from algotrade.bars import Bars
from algotrade_testkit.kafka import read_events
from market_data_service.batch import BarBatch
from market_data_service.models import PLATFORM

PROBLEM = "application/problem+json"
ALICE, BOB, ADMIN = "alice", "bob", "ops"
CSV = b"ts,open,high,low,close,volume\n2024-01-01T00:00:00Z,1,2,0.5,1.5,9\n"


def headers(service: Service, user: str, *, roles: frozenset[str] = frozenset()) -> dict[str, str]:
    principal = Principal(user_id=user, roles=roles, scopes=frozenset({"*"}))
    token = InternalTokens(service.settings, ttl_seconds=300).for_principal(principal)
    return {"Authorization": f"Bearer {token}"}


def admin(service: Service) -> dict[str, str]:
    return headers(service, ADMIN, roles=frozenset({MARKET_ADMIN_ROLE}))


def flat_bars(n: int, close: float) -> list[dict[str, Any]]:
    """``n`` 1m bars from 2024-01-01T00:00Z, every price ``close``."""
    start = 1_704_067_200
    prices = {"open": close, "high": close, "low": close, "close": close}
    return [{"ts": start + 60 * i, **prices, "volume": 1.0} for i in range(n)]


def owner_query(owner: str | None) -> dict[str, str]:
    return {} if owner is None else {"owner": owner}


async def push(
    service: Service,
    user: str,
    symbol: str,
    *,
    owner: str | None = None,
    close: float = 100.5,
    n: int = 3,
    auth: dict[str, str] | None = None,
) -> httpx.Response:
    return await service.client.post(
        "/api/market/bars",
        params=owner_query(owner),
        json={"symbol": symbol, "timeframe": "1m", "bars": flat_bars(n, close)},
        headers=auth or headers(service, user),
    )


async def closes(service: Service, user: str, symbol: str, owner: str | None = None) -> Any:
    response = await service.client.get(
        f"/api/market/symbols/{symbol}/bars",
        params={"timeframe": "1m", **owner_query(owner)},
        headers=headers(service, user),
    )
    if response.status_code != 200:
        return response.status_code
    return [b["close"] for b in response.json()["bars"]]


# -- the write endpoints, each as "user writes symbol (of owner)" --------------------------

Write = Callable[[Service, str, str, "str | None"], Awaitable[httpx.Response]]


async def write_push(service: Service, user: str, symbol: str, owner: str | None) -> Any:
    return await push(service, user, symbol, owner=owner, close=999.0, n=5)


async def write_upload(service: Service, user: str, symbol: str, owner: str | None) -> Any:
    data = {"symbol": symbol, "timeframe": "1m", **owner_query(owner)}
    return await service.client.post(
        "/api/market/imports",
        data=data,
        files={"file": ("bars.csv", CSV, "text/csv")},
        headers=headers(service, user),
    )


async def write_path_import(service: Service, user: str, symbol: str, owner: str | None) -> Any:
    body = {"path": "bars.csv", "symbol": symbol, "timeframe": "1m", **owner_query(owner)}
    return await service.client.post(
        "/api/market/imports", json=body, headers=headers(service, user)
    )


async def write_resample(service: Service, user: str, symbol: str, owner: str | None) -> Any:
    return await service.client.post(
        f"/api/market/symbols/{symbol}/resample",
        params=owner_query(owner),
        json={"source_timeframe": "1m", "target_timeframes": ["5m"]},
        headers=headers(service, user),
    )


WRITES: dict[str, Write] = {
    "push": write_push,
    "import-upload": write_upload,
    "import-path": write_path_import,
    "resample": write_resample,
}


@pytest.fixture
async def world(make_service: Any, tmp_path: Path) -> AsyncIterator[Service]:
    """Alice's PRIV and SHRD (shared with Bob), the platform's REF."""
    (tmp_path / "bars.csv").write_bytes(CSV)
    async with make_service(import_dir=tmp_path) as service:
        for symbol in ("PRIV", "SHRD"):
            assert (await push(service, ALICE, symbol)).status_code == 200
        shared = await service.client.put(
            f"/api/market/symbols/SHRD/shares/{BOB}", headers=headers(service, ALICE)
        )
        assert shared.status_code == 200, shared.text
        ref = BarBatch.of_series(
            "REF",
            "1m",
            Bars.from_columns(
                [1_704_067_200_000, 1_704_067_260_000], *(np.array([1.0, 1.0]) for _ in range(5))
            ),
        )
        await service.market.ingestor.ingest(ref, owner=PLATFORM, source="test")
        yield service


async def settle(service: Service) -> None:
    await service.market.imports.wait_idle()


@pytest.mark.parametrize("endpoint", WRITES)
async def test_no_one_writes_another_owners_series(world: Service, endpoint: str) -> None:
    write = WRITES[endpoint]
    before = {s: await closes(world, ALICE, s) for s in ("PRIV", "SHRD")}

    invisible = await write(world, BOB, "PRIV", ALICE)
    assert invisible.status_code == 404, invisible.text
    assert invisible.headers["content-type"] == PROBLEM
    unknown = await write(world, BOB, "NOPE", ALICE)  # the same answer: nothing leaks
    assert (unknown.status_code, unknown.json()["detail"]) == (404, invisible.json()["detail"])

    read_only = await write(world, BOB, "SHRD", ALICE)
    assert read_only.status_code == 403, read_only.text
    assert read_only.headers["content-type"] == PROBLEM

    platform = await write(world, BOB, "REF", "platform")
    assert platform.status_code == 403, platform.text
    assert platform.headers["content-type"] == PROBLEM

    await settle(world)
    assert {s: await closes(world, ALICE, s) for s in ("PRIV", "SHRD")} == before
    assert await closes(world, BOB, "REF") == [1.0, 1.0]


@pytest.mark.parametrize("endpoint", ["push", "import-upload", "import-path"])
async def test_a_write_of_the_same_name_creates_the_writers_own_series(
    world: Service, endpoint: str
) -> None:
    before = await closes(world, ALICE, "SHRD")
    assert await closes(world, BOB, "SHRD") == before  # Alice's, shared with him

    response = await WRITES[endpoint](world, BOB, "SHRD", None)
    assert response.status_code in (200, 202), response.text
    await settle(world)
    mine = await closes(world, BOB, "SHRD")
    assert mine != before and len(mine) >= 1  # his own now comes first
    assert await closes(world, BOB, "SHRD", owner=ALICE) == before  # hers is still readable
    assert await closes(world, ALICE, "SHRD") == before  # and untouched

    # Bob's own symbol is private to him: Alice sees her own series, never his.
    assert await closes(world, ALICE, "SHRD", owner=BOB) == 404
    assert (await push(world, BOB, "PRIV", n=1)).status_code == 200
    assert await closes(world, ALICE, "PRIV") == [100.5, 100.5, 100.5]


async def test_resample_derives_only_the_callers_own_series(world: Service) -> None:
    assert (await push(world, BOB, "SHRD", n=10, close=7.0)).status_code == 200
    response = await write_resample(world, BOB, "SHRD", None)
    assert response.status_code == 200, response.text
    assert response.json()["owner"] == BOB
    assert response.json()["results"][0]["accepted"] == 2
    alice_5m = await world.client.get(
        "/api/market/symbols/SHRD/bars?timeframe=5m", headers=headers(world, ALICE)
    )
    assert alice_5m.json()["bars"] == []


async def test_a_replay_reads_what_its_user_may_read_and_writes_their_own(world: Service) -> None:
    async def replay(user: str, symbol: str, owner: str | None = None) -> httpx.Response:
        body = {"symbol": symbol, "timeframe": "1m", "speed": "max", **owner_query(owner)}
        return await world.client.post(
            "/api/market/replays", json=body, headers=headers(world, user)
        )

    assert (await replay(BOB, "PRIV", ALICE)).status_code == 404
    assert (await replay(BOB, "PRIV")).status_code == 404  # resolves to nothing of his
    started = await replay(BOB, "SHRD")
    assert started.status_code == 201, started.text
    assert started.json()["source_owner"] == ALICE
    await world.market.replays.wait(started.json()["id"])
    target = started.json()["target_symbol"]
    assert await closes(world, BOB, target) == await closes(world, ALICE, "SHRD")
    assert await closes(world, ALICE, target) == []  # written into Bob's own series only


async def test_reads_of_a_private_symbol_answer_404_and_shares_are_readable(
    world: Service,
) -> None:
    for path in ("bars", "latest", "gaps"):
        url = f"/api/market/symbols/PRIV/{path}?timeframe=1m&owner={ALICE}"
        response = await world.client.get(url, headers=headers(world, BOB))
        assert response.status_code == 404, (path, response.text)
        assert response.headers["content-type"] == PROBLEM
    latest = await world.client.get(
        "/api/market/symbols/SHRD/latest?timeframe=1m", headers=headers(world, BOB)
    )
    assert latest.json()["owner"] == ALICE and len(latest.json()["bars"]) == 3
    # Without an owner Bob's read of PRIV finds nothing of his, shared or public: empty.
    assert await closes(world, BOB, "PRIV") == []

    listed = (await world.client.get("/api/market/symbols", headers=headers(world, BOB))).json()
    seen = {(s["symbol"], s["owner"], s["access"]) for s in listed["symbols"]}
    assert seen == {("SHRD", ALICE, "shared"), ("REF", None, "public")}


async def test_only_the_owner_shares_and_an_unshared_symbol_disappears(world: Service) -> None:
    base = "/api/market/symbols/SHRD/shares"
    bob, alice = headers(world, BOB), headers(world, ALICE)
    assert (await world.client.put(f"{base}/carol", headers=bob)).status_code == 404
    assert (await world.client.delete(f"{base}/{BOB}", headers=bob)).status_code == 404
    assert (await world.client.get(base, headers=bob)).status_code == 404
    assert (await world.client.get(base, headers=alice)).json()["shares"][0]["user_id"] == BOB
    again = await world.client.put(f"{base}/{BOB}", headers=alice)  # idempotent
    assert again.status_code == 200

    assert (await world.client.delete(f"{base}/{BOB}", headers=alice)).status_code == 204
    assert await closes(world, BOB, "SHRD", owner=ALICE) == 404
    assert await closes(world, BOB, "SHRD") == []
    assert (await write_push(world, BOB, "SHRD", ALICE)).status_code == 404
    assert (await world.client.delete(f"{base}/{BOB}", headers=alice)).status_code == 404


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("PUT", f"/api/market/symbols/SHRD/shares/{ALICE}"),  # herself
        ("PUT", "/api/market/symbols/SHRD/shares/platform"),
        ("PUT", "/api/market/symbols/SHRD/shares/" + "x" * 101),
        ("PUT", "/api/market/symbols/SHRD/shares/a%20b"),
        ("PUT", "/api/market/symbols/bad%20symbol/shares/bob"),
        ("DELETE", "/api/market/symbols/SHRD/shares/" + "x" * 101),
        ("GET", "/api/market/symbols/SHRD/bars?timeframe=1m&owner=" + "x" * 101),
        ("GET", "/api/market/symbols/SHRD/latest?timeframe=1m&owner=" + "x" * 101),
        ("GET", "/api/market/symbols/SHRD/latest?timeframe=1m&owner=a%20b"),
        ("POST", "/api/market/bars?owner=a%20b"),
    ],
)
async def test_malformed_owner_input_is_a_422_problem(
    world: Service, method: str, url: str
) -> None:
    response = await world.client.request(
        method, url, headers=headers(world, ALICE), json={"bars": []}
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM


async def test_the_platform_writes_reference_data_with_the_admin_role(
    world: Service, kafka_bootstrap: str
) -> None:
    response = await push(world, ADMIN, "REF", owner="platform", close=2.0, auth=admin(world))
    assert response.status_code == 200, response.text
    assert await closes(world, BOB, "REF") == [2.0, 2.0, 2.0]
    # The admin's own writes still go to their own namespace without ``owner``.
    assert (await push(world, ADMIN, "REF", close=3.0, auth=admin(world))).status_code == 200
    assert await closes(world, BOB, "REF") == [2.0, 2.0, 2.0]

    # Alice's two pushes, the platform's REF, its correction by the admin, the admin's own.
    events = await read_events(
        kafka_bootstrap, world.market.ingestor._topic, expect=5, settle_ms=300
    )
    by_key = {key: payload.owner for key, _, payload in events}
    assert by_key[b"REF:1m"] is None and by_key[f"{ADMIN}/REF:1m".encode()] == ADMIN
    assert by_key[f"{ALICE}/SHRD:1m".encode()] == ALICE


async def test_two_owners_of_one_name_have_separate_windows(world: Service) -> None:
    assert (await push(world, BOB, "PRIV", close=5.0)).status_code == 200
    for user, close in ((ALICE, 100.5), (BOB, 5.0)):
        for _ in range(2):  # cold (history), then warm (window)
            latest = await world.client.get(
                "/api/market/symbols/PRIV/latest?timeframe=1m", headers=headers(world, user)
            )
            assert latest.json()["owner"] == user
            assert [b["close"] for b in latest.json()["bars"]] == [close] * 3
