"""The Beta1 import: Beta1 sessions and their trades become stopped sessions their owners read
through the API, a second run changes nothing, the inventory is recomputed from the rows, and a
migrated session whose strategy can run restarts through the native submission."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from algotrade.auth import InternalTokens
from algotrade.beta1 import SessionRecord, StrategyRef, TradeRecord
from algotrade.db import build_engine, build_session_factory
from algotrade.engine import compile_graph
from forward_test_service import models
from forward_test_service.beta1 import SessionImporter, config_from_settings
from forward_test_service.market import HttpMarketData

from .conftest import Platform, btc_bars

SYMBOL = "FTBETA"
STARTED = datetime(2024, 3, 1, 9, 30, tzinfo=UTC)
STOPPED = datetime(2024, 3, 20, 17, 0, tzinfo=UTC)
H = 3_600_000


@pytest.fixture
async def db(migrated: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = build_engine(migrated, pool_size=2)
    try:
        yield build_session_factory(engine)
    finally:
        await engine.dispose()


def importer(platform: Platform, db: async_sessionmaker[AsyncSession]) -> SessionImporter:
    """Built as the migration builds it: the service's database and market data client."""
    tokens = InternalTokens(platform.settings, ttl_seconds=60)
    market = HttpMarketData(platform.market, "http://market.test", tokens)
    return SessionImporter(db, market, max_bars=platform.settings.warmup_max_bars)


def trade(legacy_id: int, side: str, entry: float, exit_: float | None, **kw: Any) -> TradeRecord:
    opened = int(STARTED.timestamp() * 1000) + legacy_id * 4 * H
    return TradeRecord(
        legacy_id=legacy_id,
        side=side,  # type: ignore[arg-type]
        quantity=kw.pop("quantity", 2.0),
        entry_price=entry,
        exit_price=exit_,
        entry_ms=opened,
        exit_ms=None if exit_ is None else opened + 8 * H,
        pnl=kw.pop("pnl", None),
        **kw,
    )


def records(strategy_id: str, plan_id: str) -> list[SessionRecord]:
    return [
        # Still running in Beta1, on a strategy that migrated with a plan: a long and a short
        # closed (the short without a pnl), a long still open.
        SessionRecord(
            legacy_id="run-1",
            owner_id="alice",
            strategy=StrategyRef(strategy_id, 1, plan_id),
            symbol=SYMBOL.lower(),
            timeframe="4h",
            status="running",
            initial_capital=10_000.0,
            current_capital=10_350.5,
            started_at=STARTED,
            stopped_at=None,
            settings={"commission": 0.001, "slippage": "0.0005", "position_size": 0.5},
            trades=(
                trade(101, "long", 100.0, 110.0, pnl=20.0),
                trade(102, "short", 110.0, 104.0, flags=("side was 'SELL'",)),
                trade(103, "long", 105.0, None),
            ),
            flags=("settings_json had a trailing comma",),
        ),
        # Stopped in Beta1, its strategy not migrated, no series in Beta2, a bad setting.
        SessionRecord(
            legacy_id="stop-2",
            owner_id="alice",
            strategy=None,
            symbol="NOBARS",
            timeframe="1H",
            status="stopped",
            initial_capital=5_000.0,
            current_capital=None,
            started_at=datetime(2024, 2, 1, 0, 0),  # naive: UTC
            stopped_at=STOPPED,
            settings={"commission": "lots"},
            trades=(trade(201, "long", 50.0, 45.0, quantity=10.0, pnl=-50.0),),
        ),
        # Beta1 stopped it with an error; its strategy became a draft.
        SessionRecord(
            legacy_id="err-3",
            owner_id="alice",
            strategy=StrategyRef(strategy_id, 1, None),
            symbol=SYMBOL,
            timeframe="4h",
            status="error",
            initial_capital=1_000.0,
            current_capital=990.0,
            started_at=datetime(2024, 1, 5, tzinfo=UTC),
            stopped_at=datetime(2024, 1, 6, tzinfo=UTC),
            settings={},
            trades=(),
        ),
        # A timeframe Beta2 does not have.
        SessionRecord(
            legacy_id="odd-4",
            owner_id="alice",
            strategy=None,
            symbol=SYMBOL,
            timeframe="3h",
            status="stopped",
            initial_capital=1_000.0,
            current_capital=None,
            started_at=STARTED,
            stopped_at=STOPPED,
            settings={},
            trades=(),
        ),
    ]


async def counts(db: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    tables = {
        "sessions": models.sessions,
        "trades": models.session_trades,
        "orders": models.session_orders,
        "legacy_ids": models.legacy_ids,
        "outbox": models.SCHEMA.outbox,
    }
    async with db() as session:
        return {
            name: int(await session.scalar(select(func.count()).select_from(table)) or 0)
            for name, table in tables.items()
        }


async def prepared(
    platform: Platform, graph: Callable[..., dict[str, Any]]
) -> tuple[str, list[SessionRecord]]:
    strategy_id = await platform.save_strategy(graph(5, 20))
    await platform.push(SYMBOL, "4h", btc_bars(60))
    return strategy_id, records(strategy_id, compile_graph(graph(5, 20)).plan_id)


async def test_beta1_sessions_become_stopped_sessions_their_owner_reads(
    platform: Platform,
    graph: Callable[..., dict[str, Any]],
    db: async_sessionmaker[AsyncSession],
) -> None:
    strategy_id, batch = await prepared(platform, graph)
    before = await counts(db)
    outcomes = await importer(platform, db).import_batch(batch)

    assert [(o.legacy_id, o.state) for o in outcomes] == [
        ("run-1", "migrated"),
        ("stop-2", "migrated"),
        ("err-3", "migrated"),
        ("odd-4", "skipped"),
    ]
    running, stopped, failed, odd = outcomes
    assert "3h" in (odd.reason or "") and odd.new_id is None
    assert "settings_json had a trailing comma" in running.flags
    assert any(f.startswith("setting not carried: position_size=0.5") for f in running.flags)
    assert any("trade 103: still open" in f for f in running.flags)
    assert any("trade 102: pnl unknown" in f for f in running.flags)
    assert any(f.startswith("setting unreadable: commission='lots'") for f in stopped.flags)
    assert any("strategy not migrated" in f for f in stopped.flags)
    assert any("no 1h bars of NOBARS" in f for f in stopped.flags)
    assert any("current capital unknown" in f for f in stopped.flags)
    assert any("draft" in f for f in failed.flags)

    # Written: 3 sessions, 3 closed trades, 1 open one as its entry fill, 3 + 4 legacy ids,
    # and not one event (a migrated session announces nothing).
    after = await counts(db)
    assert {k: after[k] - before[k] for k in after} == {
        "sessions": 3,
        "trades": 3,
        "orders": 1,
        "legacy_ids": 7,
        "outbox": 0,
    }
    async with db() as session:
        mapped = dict(
            (
                await session.execute(
                    select(models.legacy_ids.c.legacy_id, models.legacy_ids.c.new_id).where(
                        models.legacy_ids.c.kind == "trade"
                    )
                )
            ).all()
        )
        stored_flags = await session.scalar(
            select(models.legacy_ids.c.flags).where(models.legacy_ids.c.legacy_id == "run-1")
        )
    assert mapped == {
        "101": f"{running.new_id}/trades/1",
        "102": f"{running.new_id}/trades/2",
        "103": f"{running.new_id}/orders/1",
        "201": f"{stopped.new_id}/trades/1",
    }
    assert stored_flags == list(running.flags)

    # The running one: stopped now, "migrated", with Beta1's figures and the mapped config.
    session = (await platform.get(f"/api/sessions/{running.new_id}")).json()
    assert session["status"] == "stopped"
    assert (session["strategy_id"], session["version"]) == (strategy_id, 1)
    assert session["plan_id"] == compile_graph(graph(5, 20)).plan_id
    assert (session["symbol"], session["timeframe"], session["owner"]) == (SYMBOL, "4h", "alice")
    assert session["capital"] == 10_000
    assert session["cash"] == session["equity"] == 10_350.5
    assert session["position"] == 2.0  # the open long
    assert session["config"]["fee_bps"] == 10 and session["config"]["slippage_bps"] == 5
    assert session["config"]["calendar"] == "24x7"  # resolved on the series' bars
    assert session["created_at"] == "2024-03-01T09:30:00Z"
    assert session["stopped_at"] is not None and session["metrics"] is None
    async with db() as db_session:
        summary = await db_session.scalar(
            select(models.sessions.c.summary).where(models.sessions.c.id == running.new_id)
        )
    assert summary["stop_reason"] == "migrated" and summary["beta1"]["status"] == "running"

    trades = (await platform.get(f"/api/sessions/{running.new_id}/trades")).json()
    assert trades["total"] == 2
    assert [(t["seq"], t["side"], t["pnl"]) for t in trades["trades"]] == [
        (1, "long", 20.0),
        (2, "short", 12.0),  # computed: (110 - 104) * 2
    ]
    assert {(t["fees"], t["exit_reason"]) for t in trades["trades"]} == {(0.0, "beta1")}
    orders = (await platform.get(f"/api/sessions/{running.new_id}/orders")).json()["orders"]
    fills = [(o["seq"], o["side"], o["quantity"], o["price"], o["reason"]) for o in orders]
    assert fills == [(1, "buy", 2.0, 105.0, "beta1_open")]

    # The stopped one keeps its stop time and status; no strategy.
    other = (await platform.get(f"/api/sessions/{stopped.new_id}")).json()
    assert other["status"] == "stopped" and other["stopped_at"] == "2024-03-20T17:00:00Z"
    assert other["strategy_id"] is None and other["version"] is None and other["plan_id"] is None
    assert (other["timeframe"], other["owner"], other["config"]["fee_bps"]) == ("1h", None, 0)
    assert other["equity"] == 4_950.0  # initial capital plus the closed trade's pnl
    draft = (await platform.get(f"/api/sessions/{failed.new_id}")).json()
    assert draft["strategy_id"] == strategy_id and draft["plan_id"] is None

    # Listed by start: ids are ULIDs of the Beta1 start time.
    listed = (await platform.get("/api/sessions")).json()["items"]
    assert [s["id"] for s in listed] == [running.new_id, stopped.new_id, failed.new_id]

    # Nobody else sees them.
    for sid in (running.new_id, stopped.new_id):
        for path in ("", "/trades", "/orders", "/equity"):
            answer = await platform.get(f"/api/sessions/{sid}{path}", user_id="bob")
            assert answer.status_code == 404, path
        restart = await platform.post(f"/api/sessions/{sid}/restart", user_id="bob")
        assert restart.status_code == 404
    assert (await platform.get("/api/sessions", user_id="bob")).json()["items"] == []


async def test_a_second_run_finds_every_session_and_writes_nothing(
    platform: Platform,
    graph: Callable[..., dict[str, Any]],
    db: async_sessionmaker[AsyncSession],
) -> None:
    _, batch = await prepared(platform, graph)
    first = await importer(platform, db).import_batch(batch)
    before = await counts(db)
    again = await importer(platform, db).import_batch(batch)
    assert await counts(db) == before
    assert [o.state for o in again] == ["present", "present", "present", "skipped"]
    assert [o.new_id for o in again] == [o.new_id for o in first]
    assert [o.flags for o in again[:3]] == [o.flags for o in first[:3]]
    # The same Beta1 session twice in one batch is imported once.
    twice = await importer(platform, db).import_batch([batch[0], batch[0]])
    assert [o.state for o in twice] == ["present", "present"]


async def test_the_inventory_is_recomputed_from_the_stored_rows(
    platform: Platform,
    graph: Callable[..., dict[str, Any]],
    db: async_sessionmaker[AsyncSession],
) -> None:
    _, batch = await prepared(platform, graph)
    imports = importer(platform, db)
    outcomes = await imports.import_batch(batch)
    inventory = await imports.inventory(["run-1", "stop-2", "err-3", "odd-4", "never"])
    assert inventory == {
        "run-1": {
            "new_id": outcomes[0].new_id,
            "owner_id": "alice",
            "status": "stopped",
            "stop_reason": "migrated",
            "trades": 2,
            "pnl": 32.0,
            "open_trades": 1,
        },
        "stop-2": {
            "new_id": outcomes[1].new_id,
            "owner_id": "alice",
            "status": "stopped",
            "stop_reason": "beta1:stopped",
            "trades": 1,
            "pnl": -50.0,
            "open_trades": 0,
        },
        "err-3": {
            "new_id": outcomes[2].new_id,
            "owner_id": "alice",
            "status": "stopped",
            "stop_reason": "beta1:error",
            "trades": 0,
            "pnl": 0.0,
            "open_trades": 0,
        },
    }
    # Every Beta1 trade is accounted for.
    for record in batch[:3]:
        found = inventory[record.legacy_id]
        assert found["trades"] + found["open_trades"] == len(record.trades)


async def test_a_migrated_session_with_a_runnable_strategy_restarts_with_its_settings(
    platform: Platform,
    graph: Callable[..., dict[str, Any]],
    db: async_sessionmaker[AsyncSession],
) -> None:
    strategy_id, batch = await prepared(platform, graph)
    running, stopped, draft, _ = await importer(platform, db).import_batch(batch)
    old = (await platform.get(f"/api/sessions/{running.new_id}")).json()

    restarted = await platform.post(f"/api/sessions/{running.new_id}/restart")
    assert restarted.status_code == 201, restarted.text
    new = restarted.json()
    assert new["id"] != old["id"] and new["status"] == "running"
    same = ("strategy_id", "version", "plan_id", "symbol", "timeframe", "owner", "capital")
    assert {k: new[k] for k in same} == {k: old[k] for k in same}
    assert new["params"] == old["params"] == {}
    assert new["config"] == old["config"] and new["config_id"] == old["config_id"]
    # Submitted natively: warmed up from the series' history, announced.
    assert new["warmed_up"] and new["bars_applied"] == compile_graph(graph(5, 20)).warmup
    assert new["cash"] == new["equity"] == 10_000
    assert (await platform.get(f"/api/sessions/{running.new_id}")).json()["status"] == "stopped"
    async with db() as session:
        staged = await session.scalar(select(func.count()).select_from(models.SCHEMA.outbox))
    assert staged and staged >= 1

    # An active session does not restart; nor does one without a runnable strategy.
    active = await platform.post(f"/api/sessions/{new['id']}/restart")
    assert active.status_code == 409
    assert {e["code"] for e in active.json()["errors"]} == {"session_running"}
    for outcome in (stopped, draft):
        refused = await platform.post(f"/api/sessions/{outcome.new_id}/restart")
        assert refused.status_code == 409, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert {e["code"] for e in refused.json()["errors"]} == {"no_runnable_strategy"}
    assert (
        "not migrated"
        in (await platform.post(f"/api/sessions/{stopped.new_id}/restart")).json()["detail"]
    )
    listed = (await platform.get("/api/sessions", params={"status": "running"})).json()
    assert [s["id"] for s in listed["items"]] == [new["id"]]
    assert strategy_id == new["strategy_id"]


async def test_a_native_stopped_session_restarts_on_the_same_series(
    platform: Platform, graph: Callable[..., dict[str, Any]]
) -> None:
    strategy_id = await platform.save_strategy(graph(5, 20))
    await platform.push(SYMBOL, "4h", btc_bars(60))
    body = {
        "strategy_id": strategy_id,
        "symbol": SYMBOL,
        "timeframe": "4h",
        "capital": 2_500.0,
        "config": {"fee_bps": 7.5, "slippage_bps": 2, "calendar": "24x7"},
        "params": {"fast": 6},
    }
    first = (await platform.start(body)).json()
    assert (await platform.post(f"/api/sessions/{first['id']}/stop")).status_code == 200
    again = await platform.post(f"/api/sessions/{first['id']}/restart")
    assert again.status_code == 201, again.text
    new = again.json()
    keys = ("strategy_id", "version", "plan_id", "symbol", "owner", "capital", "params", "config")
    assert {k: new[k] for k in keys} == {k: first[k] for k in keys}


@pytest.mark.parametrize(
    ("settings", "fee_bps", "slippage_bps", "flagged"),
    [
        ({}, 0.0, 0.0, []),
        ({"commission": 0.001, "slippage": 0.0005}, 10.0, 5.0, []),
        ({"commission": "0.002", "position_size": 1}, 20.0, 0.0, []),
        ({"commission": True}, 0.0, 0.0, ["setting unreadable: commission"]),
        ({"slippage": -0.01}, 0.0, 0.0, ["setting unreadable: slippage"]),
        ({"commission": 0.5}, 0.0, 0.0, ["setting unreadable: commission"]),
        ({"commission": float("nan")}, 0.0, 0.0, ["setting unreadable: commission"]),
        ({"position_size": 0.25}, 0.0, 0.0, ["setting not carried: position_size=0.25"]),
        ({"position_size": "all"}, 0.0, 0.0, ["setting unreadable: position_size"]),
        ({"leverage": 3}, 0.0, 0.0, ["setting unknown: leverage"]),
    ],
)
def test_beta1_settings_map_onto_the_execution_config(
    settings: dict[str, Any], fee_bps: float, slippage_bps: float, flagged: list[str]
) -> None:
    mapped = config_from_settings(settings, capital=1_000.0, timeframe="1h")
    assert (mapped.config.fee_bps, mapped.config.slippage_bps) == (fee_bps, slippage_bps)
    assert (mapped.config.initial_capital, mapped.config.timeframe) == (1_000.0, "1h")
    assert len(mapped.flags) == len(flagged)
    for flag, start in zip(mapped.flags, flagged, strict=True):
        assert flag.startswith(start), flag


def _ours(name: str | None, type_: str, parent: Any) -> bool:
    if type_ == "schema":
        return name == "forward"
    return not (type_ == "table" and name == "alembic_version")


async def test_the_migrated_schema_matches_the_models(migrated: str) -> None:
    """Revision 0005 and `models` describe the same tables (``legacy_ids`` included), and a
    session without a plan can only be stopped or failed."""

    def diff(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(
            connection,
            opts={"include_schemas": True, "include_name": _ours, "compare_server_default": True},
        )
        return list(compare_metadata(context, models.metadata))

    engine = build_engine(migrated, pool_size=1)
    try:
        async with engine.connect() as conn:
            differences = await conn.run_sync(diff)
            check = await conn.scalar(
                text(
                    "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                    "WHERE conname = 'ck_sessions_runnable'"
                )
            )
    finally:
        await engine.dispose()
    assert differences == []
    assert check is not None and "plan IS NOT NULL" in check
