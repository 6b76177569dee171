"""The worker's bookkeeping: gaps and corrections recorded (never fabricated, never applied),
paused sessions left alone, stopped ones keep their final checkpoint, and the session's events
on ``session.events.v1`` keyed by session id."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from algotrade import epoch, session_events
from algotrade.engine import compile_graph
from algotrade.events import Topics, default_registry
from algotrade_testkit.kafka import read_all
from algotrade_testkit.plugin import wait_for

from .conftest import Platform, btc_bars, session_body

SYMBOL = "FTWORK"


async def test_gaps_and_corrections_are_recorded_and_pauses_respected(
    platform: Platform,
    graph: Callable[..., dict[str, Any]],
    start_worker: Callable[..., Any],
) -> None:
    strategy = graph(5, 20)
    warmup = compile_graph(strategy).warmup
    bars = btc_bars(warmup + 40, first=3_000)
    strategy_id = await platform.save_strategy(strategy)
    await platform.push(SYMBOL, "4h", bars.slice(0, warmup))
    session = (await platform.start(session_body(strategy_id, SYMBOL))).json()
    sid = session["id"]
    base = f"/api/sessions/{sid}"
    # A second session on the same series, never paused. Market data publishes bars through
    # its outbox, so a push returns before the worker has the bar; once the probe shows a bar,
    # the worker has handed that bar to the first session too.
    probe = (await platform.start(session_body(strategy_id, SYMBOL))).json()["id"]
    topic = Topics(platform.settings.kafka_topic_prefix).session_events

    async def published() -> list[Any]:
        records = await read_all(platform.settings.kafka_bootstrap, topic)
        return [r for r in records if r.key == sid.encode()]

    async def carried() -> dict[int, tuple[float, float]]:
        """The equity points the session.equity events carried, by bar time."""
        points: dict[int, tuple[float, float]] = {}
        for record in await published():
            envelope = orjson.loads(record.value)
            if envelope["type"] == session_events.EQUITY:
                for ts, equity, position in envelope["payload"]["points"]:
                    points[ts] = (equity, position)
        return points

    async with start_worker():
        await platform.push(SYMBOL, "4h", bars.slice(warmup, warmup + 10))
        await platform.wait_bars(sid, warmup + 10)
        # Two bars never arrive: the next one is applied and the two are recorded as a gap.
        await platform.push(SYMBOL, "4h", bars.slice(warmup + 12, warmup + 13))
        gapped = await platform.wait_bars(sid, warmup + 11)
        assert gapped["gaps"] == 2
        # A correction of an applied bar is recorded, not applied.
        before = gapped["equity"], gapped["bars_applied"]
        corrected = bars.slice(warmup + 5, warmup + 6)
        corrected.close[0] = corrected.close[0] * 1.01
        corrected.high[0] = max(corrected.high[0], corrected.close[0])
        await platform.push(SYMBOL, "4h", corrected)

        async def corrections() -> bool:
            return bool((await platform.get(base)).json()["corrections"] == 1)

        await wait_for(corrections, within=30)
        now = (await platform.get(base)).json()
        assert (now["equity"], now["bars_applied"]) == before

        # Paused: bars pass by; resumed: the next bar is applied, the missed ones a gap.
        assert (await platform.post(f"{base}/pause")).status_code == 200
        await platform.push(SYMBOL, "4h", bars.slice(warmup + 13, warmup + 16))
        revised = bars.slice(warmup + 13, warmup + 14)  # a correction of a bar passed by
        revised.close[0] = revised.close[0] * 0.99
        revised.low[0] = min(revised.low[0], revised.close[0])
        await platform.push(SYMBOL, "4h", revised)

        async def passed_by() -> bool:
            probed = (await platform.get(f"/api/sessions/{probe}")).json()
            return bool(probed["bars_applied"] == warmup + 11 + 3 and probed["corrections"] == 2)

        await wait_for(passed_by, within=30)
        assert (await platform.get(base)).json()["bars_applied"] == warmup + 11
        assert (await platform.post(f"{base}/resume")).status_code == 200
        await platform.push(SYMBOL, "4h", bars.slice(warmup + 16, warmup + 40))
        done = await platform.wait_bars(sid, warmup + 11 + 24)
        assert done["gaps"] == 2 + 3
        assert done["last_bar_time"] is not None

        # The worker sends a bar's session.equity while Redis takes its checkpoint, and the
        # stop below is the API's: nothing orders the two, so wait for the last bar's event.
        async def every_point_out() -> bool:
            return len(await carried()) == done["bars_applied"] - warmup

        await wait_for(every_point_out, within=30)

        stopped = (await platform.post(f"{base}/stop")).json()
        assert stopped["status"] == "stopped"
        assert stopped["bars_applied"] == done["bars_applied"]
        assert stopped["equity"] == done["equity"]
        # Finished: its points are all in PostgreSQL and its Redis keys expire.
        checkpoints = platform.app.state.services.checkpoints
        ttl = await checkpoints._redis.ttl(checkpoints.state_key(sid))
        assert 0 < ttl <= platform.settings.finished_checkpoint_ttl_seconds
        series = (await platform.app.state.services.sessions.get("alice", sid)).series_key
        assert (await checkpoints.pending_equity(series)).points == {}

    async def all_there() -> bool:
        records = await published()
        types = {dict(r.headers or ())["event-type"].decode() for r in records}
        return {session_events.STARTED, session_events.PAUSED, session_events.STOPPED} <= types

    await wait_for(all_there, within=30)
    types = [dict(r.headers or ())["event-type"].decode() for r in await published()]
    assert types[0] == session_events.STARTED
    assert types[1] == session_events.WARMED_UP
    assert session_events.EQUITY in types
    assert types.index(session_events.PAUSED) < types.index(session_events.RESUMED)
    assert types[-1] == session_events.STOPPED
    orders = (await platform.get(f"{base}/orders")).json()
    assert types.count(session_events.ORDER_FILLED) == orders["total"]
    trades = (await platform.get(f"{base}/trades")).json()
    assert types.count(session_events.TRADE_CLOSED) == trades["total"]

    # The session.equity events together carry the whole curve: every applied bar's point,
    # the same as the session's own equity endpoint.
    for record in await published():
        envelope = orjson.loads(record.value)
        if envelope["type"] == session_events.EQUITY:
            # Written by hand around a validated template: still a valid event of its type.
            decoded, payload = default_registry.decode(record.value)
            assert (decoded.id, decoded.key, decoded.user_id) == (envelope["id"], sid, "alice")
            assert isinstance(payload, session_events.SessionEquity)
            assert dict(record.headers or ())["event-id"].decode() == decoded.id
    points = await carried()
    curve = (await platform.get(f"{base}/equity", params={"points": 10_000})).json()
    assert curve["method"] == "all"
    assert len(points) == curve["total_points"] == done["bars_applied"] - warmup
    assert [
        (epoch.iso_from_ms(ts), equity, position)
        for ts, (equity, position) in sorted(points.items())
    ] == [(p["ts"], p["equity"], p["position"]) for p in curve["points"]]
