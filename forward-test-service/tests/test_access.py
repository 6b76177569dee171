"""A session on a series shared with its user fails once the share is revoked (its user no
longer reads the owner's bars); sessions on their own data go on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .conftest import Platform, btc_bars, session_body


async def test_a_revoked_share_fails_the_sessions_that_followed_it(
    platform: Platform, graph: Callable[..., dict[str, Any]]
) -> None:
    bars = btc_bars(60, first=500)
    await platform.push("SHARED", "4h", bars, user_id="bob")
    await platform.push("OWN", "4h", bars)
    shared = await platform.market.put(
        "/api/market/symbols/SHARED/shares/alice", headers=platform.headers("bob")
    )
    assert shared.status_code in (200, 201), shared.text
    strategy_id = await platform.save_strategy(graph(5, 20))
    on_shared = await platform.start(session_body(strategy_id, "SHARED", owner="bob"))
    assert on_shared.status_code == 201, on_shared.text
    assert on_shared.json()["owner"] == "bob"
    own = await platform.start(session_body(strategy_id, "OWN"))
    assert own.status_code == 201, own.text
    access = platform.app.state.services.access

    assert await access.check() == []  # still shared: nothing happens

    revoked = await platform.market.delete(
        "/api/market/symbols/SHARED/shares/alice", headers=platform.headers("bob")
    )
    assert revoked.status_code == 204, revoked.text
    sid = on_shared.json()["id"]
    assert await access.check() == [sid]
    failed = (await platform.get(f"/api/sessions/{sid}")).json()
    assert failed["status"] == "failed"
    assert "access revoked" in failed["error"] and "bob" in failed["error"]
    assert (await platform.get(f"/api/sessions/{own.json()['id']}")).json()["status"] == "running"
    assert await access.check() == []  # failed sessions are not checked again
