"""The Beta1 migration run: users, then strategies, sessions and backtests, in batches.

Each service's importer writes its own schema and remembers every Beta1 row it imported, one
transaction per batch. So a second run finds everything ``present`` and writes nothing, and a
run interrupted anywhere resumes at the first batch that did not commit. ``dry_run`` writes
nothing: it asks each importer which rows it already holds and predicts the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from algotrade.beta1 import (
    BacktestRecord,
    Kind,
    Outcome,
    SessionRecord,
    StrategyRecord,
    StrategyRef,
    UserRecord,
)
from algotrade_devstack.beta1.source import Beta1Data, Skip

BATCH_SIZE = 100
T = TypeVar("T")


class Importer(Protocol):
    async def import_batch(self, records: Sequence[Any]) -> list[Outcome]: ...

    async def inventory(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]: ...


@dataclass(frozen=True)
class Targets:
    """One importer per service that receives Beta1 rows."""

    users: Importer
    strategies: Importer
    sessions: Importer
    backtests: Importer


@dataclass
class Result:
    outcomes: dict[Kind, dict[str, Outcome]]
    skipped: list[Skip]
    dry_run: bool


Progress = Callable[[Kind, int, int], None]


def _batches(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def migrate(
    data: Beta1Data,
    targets: Targets,
    *,
    dry_run: bool = False,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
) -> Result:
    outcomes: dict[Kind, dict[str, Outcome]] = {
        "user": {},
        "strategy": {},
        "session": {},
        "trade": {},
        "backtest": {},
    }

    async def run(kind: Kind, importer: Importer, records: Sequence[Any]) -> None:
        done = 0
        for batch in _batches(records, batch_size):
            if dry_run:
                results = await _predict(kind, importer, batch)
            else:
                results = await importer.import_batch(batch)
            for outcome in results:
                outcomes[kind][outcome.legacy_id] = outcome
            done += len(batch)
            if progress is not None:
                progress(kind, done, len(records))

    await run("user", targets.users, [_user(u) for u in data.users])
    owner = {int(k): o.new_id or f"dry-run-user-{k}" for k, o in outcomes["user"].items()}

    await run(
        "strategy",
        targets.strategies,
        [
            StrategyRecord(
                legacy_id=s.legacy_id,
                owner_id=owner[s.user_id],
                name=s.name,
                description=s.description,
                graph_json=s.graph_json,
                created_at=s.created_at,
                updated_at=s.updated_at,
                deleted=s.deleted,
                flags=tuple(s.flags),
            )
            for s in data.strategies
        ],
    )
    refs = {
        int(k): StrategyRef(
            strategy_id=o.new_id or f"dry-run-strategy-{k}",
            version=1,
            plan_id=o.detail.get("plan_id"),
        )
        for k, o in outcomes["strategy"].items()
    }

    session_records = [
        SessionRecord(
            legacy_id=s.legacy_id,
            owner_id=owner[s.user_id],
            strategy=refs.get(s.strategy_id) if s.strategy_id is not None else None,
            symbol=s.symbol,
            timeframe=s.timeframe,
            status=s.status,
            initial_capital=s.initial_capital,
            current_capital=s.current_capital,
            started_at=s.started_at,
            stopped_at=s.stopped_at,
            settings=s.settings,
            trades=tuple(s.trades),
            flags=tuple(s.flags),
        )
        for s in data.sessions
    ]
    await run("session", targets.sessions, session_records)
    for record in session_records:
        session = outcomes["session"][record.legacy_id]
        for trade in record.trades:
            outcomes["trade"][str(trade.legacy_id)] = Outcome(
                kind="trade",
                legacy_id=str(trade.legacy_id),
                state=session.state,
                new_id=session.new_id,
                flags=trade.flags,
            )

    await run(
        "backtest",
        targets.backtests,
        [
            BacktestRecord(
                legacy_id=b.legacy_id,
                owner_id=owner[b.user_id],
                strategy=refs.get(b.strategy_id) if b.strategy_id is not None else None,
                symbol=b.symbol,
                timeframe=b.timeframe,
                start_ms=b.start_ms,
                end_ms=b.end_ms,
                initial_capital=b.initial_capital,
                final_capital=b.final_capital,
                total_return=b.total_return,
                sharpe_ratio=b.sharpe_ratio,
                max_drawdown=b.max_drawdown,
                num_trades=b.num_trades,
                trades=tuple(b.trades),
                equity=tuple(b.equity),
                created_at=b.created_at,
                flags=tuple(b.flags),
            )
            for b in data.backtests
        ],
    )
    return Result(outcomes=outcomes, skipped=data.skipped, dry_run=dry_run)


def _user(user: Any) -> UserRecord:
    return UserRecord(
        legacy_id=user.legacy_id,
        username=user.username,
        email=user.email,
        password_hash=user.password_hash,
        created_at=user.created_at,
        is_active=user.is_active,
        flags=tuple(user.flags),
    )


async def _predict(kind: Kind, importer: Importer, batch: Sequence[Any]) -> list[Outcome]:
    """What `import_batch` would do, without writing: rows the target holds are ``present``,
    the others would be migrated (strategies with the flags their mapping would give)."""
    ids = [str(r.legacy_id) for r in batch]
    held = await importer.inventory(ids)
    predicted: list[Outcome] = []
    for record, legacy_id in zip(batch, ids, strict=True):
        if legacy_id in held:
            predicted.append(
                Outcome(
                    kind=kind,
                    legacy_id=legacy_id,
                    state="present",
                    new_id=held[legacy_id]["new_id"],
                    detail={"plan_id": held[legacy_id].get("plan_id")},
                )
            )
            continue
        flags = tuple(record.flags)
        detail: dict[str, Any] = {}
        checksum = None
        if kind == "strategy":
            from strategy_service.beta1 import map_graph

            mapped = map_graph(record.graph_json, legacy_id=record.legacy_id)
            checksum, detail = mapped.checksum, {"plan_id": mapped.plan_id}
            if mapped.plan_id is None:
                flags += (f"draft: {len(mapped.problems)} problem(s)",)
        predicted.append(
            Outcome(
                kind=kind,
                legacy_id=legacy_id,
                state="migrated",
                flags=flags,
                checksum=checksum,
                detail=detail,
            )
        )
    return predicted
