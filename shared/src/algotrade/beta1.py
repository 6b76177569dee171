"""The Beta1 import contract: what the migration hands each service and what it gets back.

``algotrade migrate beta1`` reads Beta1's SQLite database, cleans each row (times, sides,
NULLs) and hands the records below to each service's import entry point
(``<service>.beta1``), which writes only its own schema. Every service keeps a
``legacy_ids`` table mapping a Beta1 row to the row it became, written in the same
transaction as that row: a second run finds the mapping and changes nothing, and an
interrupted run resumes where its last committed batch ended.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

from sqlalchemy import Column, ColumnElement, DateTime, MetaData, String, Table, and_, func
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession

SOURCE: Final = "beta1"

Kind = Literal["user", "strategy", "session", "trade", "backtest"]
State = Literal["migrated", "present", "skipped"]
"""``migrated`` in this run, ``present`` from an earlier run (nothing written), ``skipped``
never (with a reason)."""


def legacy_ids_table(metadata: MetaData) -> Table:
    """The ``legacy_ids`` table of a service's schema: one row per Beta1 row imported."""
    return Table(
        "legacy_ids",
        metadata,
        Column("source", String(16), primary_key=True),
        Column("kind", String(16), primary_key=True),
        Column("legacy_id", String(64), primary_key=True),
        Column("new_id", String(64), nullable=False),
        Column("checksum", String(64)),  # e.g. the migrated graph's SHA-256
        Column("flags", JSONB, nullable=False),  # problems found on the way, [] when none
        Column("migrated_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    )


def imported(table: Table, kind: Kind, legacy_ids: Sequence[str]) -> ColumnElement[bool]:
    """The ``legacy_ids`` rows of ``kind`` for these Beta1 ids (a where-clause)."""
    return and_(
        table.c.source == SOURCE, table.c.kind == kind, table.c.legacy_id.in_(list(legacy_ids))
    )


async def claim(
    session: AsyncSession,
    table: Table,
    kind: Kind,
    legacy_id: str,
    new_id: str,
    flags: Sequence[str],
    checksum: str | None = None,
) -> bool:
    """Record in the caller's transaction that ``legacy_id`` becomes ``new_id``; False when an
    earlier or concurrent run holds it, and the caller writes nothing for it."""
    claimed = await session.execute(
        insert(table)
        .values(
            source=SOURCE,
            kind=kind,
            legacy_id=legacy_id,
            new_id=new_id,
            checksum=checksum,
            flags=list(flags),
        )
        .on_conflict_do_nothing()
        .returning(table.c.new_id)
    )
    return claimed.first() is not None


@dataclass(frozen=True, slots=True)
class Claim:
    legacy_id: str
    new_id: str
    flags: Sequence[str] = ()
    checksum: str | None = None


async def claim_many(
    session: AsyncSession, table: Table, kind: Kind, claims: Sequence[Claim]
) -> set[str]:
    """`claim` for many rows in one statement: the Beta1 ids this run now holds (the others
    are held by an earlier or concurrent run, and the caller writes nothing for them)."""
    if not claims:
        return set()
    result = await session.execute(
        insert(table)
        .values(
            [
                {
                    "source": SOURCE,
                    "kind": kind,
                    "legacy_id": c.legacy_id,
                    "new_id": c.new_id,
                    "checksum": c.checksum,
                    "flags": list(c.flags),
                }
                for c in claims
            ]
        )
        .on_conflict_do_nothing()
        .returning(table.c.legacy_id)
    )
    return {row[0] for row in result}


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one Beta1 row."""

    kind: Kind
    legacy_id: str
    state: State
    new_id: str | None = None
    flags: tuple[str, ...] = ()
    reason: str | None = None  # why it was skipped
    checksum: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class UserRecord:
    legacy_id: int
    username: str
    email: str  # the login address: Beta1's email, or a stand-in when it had none (flagged)
    password_hash: str | None  # Werkzeug's format; None: the user must reset the password
    created_at: datetime | None
    is_active: bool
    flags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StrategyRecord:
    legacy_id: int
    owner_id: str  # the Beta2 user id
    name: str
    description: str
    graph_json: str | None  # Beta1's graph, as stored (may be invalid JSON)
    created_at: datetime | None
    updated_at: datetime | None
    deleted: bool
    flags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TradeRecord:
    legacy_id: int
    side: Literal["long", "short"]
    quantity: float
    entry_price: float
    exit_price: float | None  # None: still open when Beta1 stopped
    entry_ms: int
    exit_ms: int | None
    pnl: float | None
    flags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StrategyRef:
    """The Beta2 strategy a Beta1 session or backtest ran (None when it was not migrated)."""

    strategy_id: str
    version: int
    plan_id: str | None  # None: the strategy is a draft that does not validate


@dataclass(frozen=True, slots=True)
class SessionRecord:
    legacy_id: str
    owner_id: str
    strategy: StrategyRef | None
    symbol: str
    timeframe: str
    status: str  # Beta1's status, kept for the record
    initial_capital: float
    current_capital: float | None
    started_at: datetime | None
    stopped_at: datetime | None
    settings: dict[str, Any]  # Beta1's settings_json, parsed ({} when it was not JSON)
    trades: tuple[TradeRecord, ...]
    flags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class EquityPoint:
    ts_ms: int
    equity: float


@dataclass(frozen=True, slots=True)
class BacktestRecord:
    legacy_id: int
    owner_id: str
    strategy: StrategyRef | None
    symbol: str
    timeframe: str
    start_ms: int | None
    end_ms: int | None
    initial_capital: float
    final_capital: float | None
    total_return: float | None
    sharpe_ratio: float | None
    max_drawdown: float | None
    num_trades: int | None
    trades: tuple[TradeRecord, ...]
    equity: tuple[EquityPoint, ...]
    created_at: datetime | None
    flags: tuple[str, ...] = ()
