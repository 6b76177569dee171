"""The Beta1 import: migrated backtests are completed jobs that the read routes serve as they
serve native ones, a second run writes nothing, and the inventory recomputes what was stored."""

from __future__ import annotations

import dataclasses
import io
import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import numpy as np
import orjson
import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select

from algotrade.beta1 import SOURCE, BacktestRecord, EquityPoint, StrategyRef, TradeRecord
from algotrade.db import build_engine, build_session_factory
from algotrade.engine import Bars, compile_graph
from algotrade.events import default_registry
from algotrade.storage import ObjectStore
from algotrade_testkit.graphs import sma_cross
from backtesting_service import execution
from backtesting_service.beta1 import BacktestImporter
from backtesting_service.models import SCHEMA, jobs, legacy_ids
from backtesting_service.results import EQUITY, TRADES, results_prefix

from .conftest import Service

DAY = 86_400_000
T0 = 1_600_041_600_000  # 2020-09-14, a Monday
PLAN = "f" * 64


def equity_curve(n: int, capital: float) -> tuple[EquityPoint, ...]:
    return tuple(
        EquityPoint(T0 + i * DAY, capital + 25.0 * i - (60.0 if i == 5 else 0)) for i in range(n)
    )


def with_strategy() -> BacktestRecord:
    """Long and short trades, one without a pnl, one still open; a Beta1 timeframe spelling."""
    return BacktestRecord(
        legacy_id=101,
        owner_id="alice",
        strategy=StrategyRef(strategy_id="s-1", version=1, plan_id=PLAN),
        symbol="btc/usd",
        timeframe="1D",
        start_ms=T0,
        end_ms=T0 + 10 * DAY,
        initial_capital=10_000.0,
        final_capital=10_225.0,
        total_return=2.25,
        sharpe_ratio=1.7,
        max_drawdown=0.4,
        num_trades=3,
        trades=(
            TradeRecord(1, "long", 2.0, 100.0, 110.0, T0 + DAY, T0 + 3 * DAY, 20.0),
            TradeRecord(2, "short", 1.5, 120.0, 100.0, T0 + 4 * DAY, T0 + 6 * DAY, None),
            TradeRecord(3, "long", 1.0, 100.0, None, T0 + 8 * DAY, None, 5.0, flags=("late",)),
        ),
        equity=equity_curve(10, 10_000.0),
        created_at=datetime(2021, 3, 1, 12, 0, tzinfo=UTC),
        flags=("strategy graph was a draft",),
    )


def without_equity() -> BacktestRecord:
    """No strategy (it was not migrated), trades but no equity curve."""
    return BacktestRecord(
        legacy_id=102,
        owner_id="alice",
        strategy=None,
        symbol="SPY",
        timeframe="1h",
        start_ms=None,
        end_ms=None,
        initial_capital=5_000.0,
        final_capital=4_990.0,
        total_return=-0.2,
        sharpe_ratio=None,
        max_drawdown=None,
        num_trades=1,
        trades=(
            TradeRecord(7, "short", 10.0, 300.0, 301.0, T0 + 3_600_000, T0 + 7_200_000, -10.0),
        ),
        equity=(),
        created_at=datetime(2021, 2, 1, tzinfo=UTC),
    )


def without_trades() -> BacktestRecord:
    return BacktestRecord(
        legacy_id=103,
        owner_id="carol",
        strategy=StrategyRef(strategy_id="s-9", version=2, plan_id=None),  # a draft
        symbol="SPY",
        timeframe="1d",
        start_ms=T0,
        end_ms=T0 + 3 * DAY,
        initial_capital=1_000.0,
        final_capital=1_000.0,
        total_return=0.0,
        sharpe_ratio=float("nan"),
        max_drawdown=0.0,
        num_trades=0,
        trades=(),
        equity=equity_curve(3, 1_000.0)[:3],
        created_at=None,
    )


@pytest.fixture
async def importer(service: Service) -> AsyncIterator[BacktestImporter]:
    """The importer on the service's own database, bucket and topics (the app made the bucket)."""
    settings = service.settings
    engine = build_engine(settings.database_url.get_secret_value(), pool_size=2)
    try:
        async with BacktestImporter.open(settings, build_session_factory(engine)) as importer:
            yield importer
    finally:
        await engine.dispose()


async def stored_counts(service: Service) -> dict[str, int]:
    """Jobs, legacy ids, outbox rows and result objects."""
    engine = build_engine(service.settings.database_url.get_secret_value(), pool_size=1)
    try:
        async with engine.connect() as conn:
            counts = {
                name: int(await conn.scalar(select(func.count()).select_from(table)) or 0)
                for name, table in (("jobs", jobs), ("ids", legacy_ids), ("outbox", SCHEMA.outbox))
            }
    finally:
        await engine.dispose()
    store = ObjectStore.from_settings(service.settings)
    counts["objects"] = len(await store.list_keys("backtests/"))
    return counts


async def test_imported_backtests_are_served_by_the_read_routes_to_their_owner_only(
    service: Service, importer: BacktestImporter
) -> None:
    records = [with_strategy(), without_equity(), without_trades()]
    outcomes = await importer.import_batch(records)
    assert [o.state for o in outcomes] == ["migrated"] * 3
    assert [o.legacy_id for o in outcomes] == ["101", "102", "103"]
    first, second, third = outcomes
    assert first.flags[0] == "strategy graph was a draft"  # the record's flags come first
    assert "trade 3: late" in first.flags
    assert "trade 2: no pnl in Beta1, computed from its prices" in first.flags
    assert "no equity curve" in second.flags and "no trades" in third.flags
    assert "Beta1's sharpe_ratio was nan; kept as null" in third.flags
    # The job ids carry Beta1's creation time, so lists show them where they were.
    assert first.new_id is not None and second.new_id is not None and second.new_id < first.new_id

    job = (await service.get(f"/api/backtests/{first.new_id}")).json()
    assert job["status"] == "completed" and job["kind"] == "backtest"
    assert (job["strategy_id"], job["version"], job["plan_id"]) == ("s-1", 1, PLAN)
    assert (job["symbol"], job["timeframe"]) == ("BTC-USD", "1d")
    assert job["start"] == "2020-09-14T00:00:00Z" and job["end"] == "2020-09-24T00:00:00Z"
    assert job["config"]["initial_capital"] == 10_000.0 and job["bars"] == 10
    metrics = job["summary"]["metrics"]
    assert metrics["trade_count"] == 2 and metrics["open_trades"] == 1  # closed trades count
    assert metrics["final_equity"] == 10_225.0
    assert metrics["total_return"] == pytest.approx(0.0225)
    assert metrics["max_drawdown"] == pytest.approx(1 - 10_065.0 / 10_100.0)
    assert metrics["benchmark_return"] is None  # Beta1 kept no bars
    beta1 = job["summary"]["beta1"]
    assert (beta1["legacy_id"], beta1["sharpe_ratio"], beta1["max_drawdown"]) == (101, 1.7, 0.4)
    assert (beta1["total_return"], beta1["num_trades"], beta1["final_capital"]) == (
        2.25,
        3,
        10_225.0,
    )
    assert beta1["flags"] == list(first.flags)

    trades = (await service.get(f"/api/backtests/{first.new_id}/trades")).json()
    assert trades["total"] == 3
    rows = trades["trades"]
    assert [t["side"] for t in rows] == ["long", "short", "long"]
    assert [t["pnl"] for t in rows] == [20.0, 30.0, 5.0]  # the short's pnl from its prices
    assert [t["exit_reason"] for t in rows] == ["unknown", "unknown", "end"]
    assert [t["is_open"] for t in rows] == [False, False, True]
    assert rows[1]["bars_held"] == 2 and rows[1]["fees"] == 0.0
    assert rows[2]["exit_price"] == 105.0  # marked to Beta1's pnl

    equity = (await service.get(f"/api/backtests/{first.new_id}/equity")).json()
    assert equity["total_points"] == 10 and equity["method"] == "all"
    assert [p["position"] for p in equity["points"]] == [0, 2, 2, 0, -1.5, -1.5, 0, 0, 1, 1]
    assert equity["points"][5]["drawdown"] == pytest.approx(1 - 10_065.0 / 10_100.0)

    empty = (await service.get(f"/api/backtests/{second.new_id}")).json()
    assert (empty["strategy_id"], empty["plan_id"], empty["bars"]) == (None, None, 0)
    # No range in Beta1: the trades give it.
    assert empty["start"] == "2020-09-14T01:00:00Z" and empty["end"] == "2020-09-14T02:00:00Z"
    assert empty["summary"]["metrics"]["final_equity"] == 5_000.0  # no curve: the capital
    assert empty["summary"]["beta1"]["final_capital"] == 4_990.0
    no_curve = (await service.get(f"/api/backtests/{second.new_id}/equity")).json()
    assert no_curve["total_points"] == 0 and no_curve["points"] == []
    short = (await service.get(f"/api/backtests/{second.new_id}/trades")).json()["trades"]
    assert [(t["side"], t["pnl"]) for t in short] == [("short", -10.0)]

    listed = (await service.get("/api/backtests")).json()["items"]
    assert [j["id"] for j in listed] == [first.new_id, second.new_id]
    carols = (await service.get(f"/api/backtests/{third.new_id}", user_id="carol")).json()
    assert (carols["strategy_id"], carols["version"], carols["plan_id"]) == ("s-9", 2, None)
    no_trades = await service.get(f"/api/backtests/{third.new_id}/trades", user_id="carol")
    assert no_trades.status_code == 200 and no_trades.json()["total"] == 0

    for path in ("", "/trades", "/equity"):
        response = await service.get(f"/api/backtests/{first.new_id}{path}", user_id="bob")
        assert response.status_code == 404, path
        response = await service.get(f"/api/backtests/{third.new_id}{path}", user_id="alice")
        assert response.status_code == 404, path


async def test_results_have_the_native_files_columns_and_summary_and_announce_completion(
    service: Service, importer: BacktestImporter
) -> None:
    [outcome] = await importer.import_batch([with_strategy()])
    assert outcome.new_id is not None
    prefix = results_prefix("alice", outcome.new_id)
    store = ObjectStore.from_settings(service.settings)

    prices = np.array([10.0, 11, 12, 11, 10, 9, 10, 11, 12, 13, 12, 11, 10, 11, 12, 13, 14])
    bars = Bars.from_arrays(open=prices, high=prices, low=prices, close=prices, volume=prices)
    plan = compile_graph(sma_cross(2, 5))
    summary, native_equity, native_trades = execution.run_single(
        plan.to_bytes(), bars, '{"initial_capital": 1000.0}'
    )
    for name, native in ((EQUITY, native_equity), (TRADES, native_trades)):
        ours = pq.read_schema(io.BytesIO(await store.get_bytes(prefix + name)))
        assert ours.equals(pq.read_schema(io.BytesIO(native))), name
    stored = await store.get_json(prefix + "summary.json")
    assert set(orjson.loads(summary)) <= set(stored)
    assert set(stored["metrics"]) == set(orjson.loads(summary)["metrics"])

    engine = build_engine(service.settings.database_url.get_secret_value(), pool_size=1)
    try:
        async with engine.connect() as conn:
            payloads = (await conn.execute(select(SCHEMA.outbox.c.payload))).scalars().all()
    finally:
        await engine.dispose()
    [(envelope, event)] = [default_registry.decode(p) for p in payloads]
    assert envelope.type == "backtest.completed" and envelope.user_id == "alice"
    assert event.model_dump() == {
        "job_id": outcome.new_id,
        "kind": "backtest",
        "strategy_id": "s-1",
        "strategy_version": 1,
        "plan_id": PLAN,
        "symbol": "BTC-USD",
        "timeframe": "1d",
        "results_prefix": prefix,
        "summary": (await service.get(f"/api/backtests/{outcome.new_id}")).json()["summary"],
    }


async def test_a_second_run_finds_every_backtest_present_and_writes_nothing(
    service: Service, importer: BacktestImporter
) -> None:
    records = [with_strategy(), without_equity(), without_trades()]
    first = await importer.import_batch(records)
    before = await stored_counts(service)
    assert before["jobs"] == before["ids"] == before["outbox"] == 3 and before["objects"] == 9

    again = await importer.import_batch([*records, with_strategy()])
    assert [o.state for o in again] == ["present"] * 4
    assert [o.new_id for o in again] == [o.new_id for o in first] + [first[0].new_id]
    assert [(o.flags, o.checksum) for o in again[:3]] == [(o.flags, o.checksum) for o in first]
    assert await stored_counts(service) == before

    engine = build_engine(service.settings.database_url.get_secret_value(), pool_size=1)
    try:
        async with engine.connect() as conn:
            flags = dict(
                (
                    await conn.execute(
                        select(legacy_ids.c.legacy_id, legacy_ids.c.flags).where(
                            legacy_ids.c.source == SOURCE, legacy_ids.c.kind == "backtest"
                        )
                    )
                ).all()
            )
    finally:
        await engine.dispose()
    assert flags == {o.legacy_id: list(o.flags) for o in first}


async def test_inventory_recomputes_what_was_imported_from_the_rows_and_files(
    service: Service, importer: BacktestImporter
) -> None:
    records = [with_strategy(), without_equity(), without_trades()]
    outcomes = await importer.import_batch(records)
    inventory = await importer.inventory(["101", "102", "103", "999"])
    assert inventory == {
        "101": {
            "new_id": outcomes[0].new_id,
            "owner_id": "alice",
            "plan_id": PLAN,
            "trades": 3,
            "pnl": math.fsum([20.0, 30.0, 5.0]),
            "final_equity": 10_225.0,
            "equity_points": 10,
            "checksum": outcomes[0].checksum,
            "missing": [],
        },
        "102": {
            "new_id": outcomes[1].new_id,
            "owner_id": "alice",
            "plan_id": None,
            "trades": 1,
            "pnl": -10.0,
            "final_equity": None,
            "equity_points": 0,
            "checksum": outcomes[1].checksum,
            "missing": [],
        },
        "103": {
            "new_id": outcomes[2].new_id,
            "owner_id": "carol",
            "plan_id": None,
            "trades": 0,
            "pnl": 0.0,
            "final_equity": 1_050.0,
            "equity_points": 3,
            "checksum": outcomes[2].checksum,
            "missing": [],
        },
    }


async def test_a_record_without_an_owner_is_skipped_and_one_without_capital_is_flagged(
    service: Service, importer: BacktestImporter
) -> None:
    orphan = dataclasses.replace(without_trades(), legacy_id=104, owner_id="")
    no_capital = dataclasses.replace(without_equity(), legacy_id=105, initial_capital=0.0)
    skipped, stored = await importer.import_batch([orphan, no_capital])
    assert skipped.state == "skipped" and skipped.new_id is None
    assert skipped.reason is not None and "owner id" in skipped.reason
    assert stored.state == "migrated"
    assert "initial capital 0.0 unusable: 100000 shown as a placeholder" in stored.flags
    job = (await service.get(f"/api/backtests/{stored.new_id}")).json()
    assert job["config"]["initial_capital"] == 100_000.0
    assert job["summary"]["beta1"]["initial_capital"] == 0.0
    counts = await stored_counts(service)
    assert counts == {"jobs": 1, "ids": 1, "outbox": 1, "objects": 3}
