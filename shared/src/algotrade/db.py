"""Async database access (SQLAlchemy 2 + asyncpg) and the per-service schema convention.

Each service owns one PostgreSQL schema (``gateway``, ``strategy``, ``market``...) described by
a `ServiceSchema`: its declarative base plus the two tables every service has, ``outbox`` (see
`algotrade.outbox`) and ``processed_events`` (see `claim_event`).
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import (
    Column,
    DateTime,
    Index,
    LargeBinary,
    MetaData,
    String,
    Table,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

from algotrade.errors import DependencyUnavailable, NotFound

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def build_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """An asyncpg engine; plain ``postgresql://`` URLs are accepted and given the driver."""
    return create_async_engine(
        asyncpg_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        json_deserializer=load_json,
    )


def _integer_or_float(text: str) -> int | float:
    # JSONB keeps numbers as `numeric` and prints 9.2e26 as 922936569621772700000000000: read
    # back as an integer it would no longer fit a 64-bit JSON encoder (orjson) or a client.
    number = int(text)
    return number if -(2**63) <= number < 2**63 else float(number)


def load_json(text: str) -> Any:
    """JSON from a JSON/JSONB column, integers beyond 64 bits read as the floats they were."""
    return json.loads(text, parse_int=_integer_or_float)


def asyncpg_url(url: str) -> str:
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+asyncpg://" + url[len(plain) :]
    return url


def build_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@dataclass(frozen=True)
class ServiceSchema:
    """A service's PostgreSQL schema: declarative base, outbox and processed-events tables."""

    name: str
    base: type[DeclarativeBase]
    outbox: Table
    processed_events: Table


def service_schema(name: str) -> ServiceSchema:
    metadata = MetaData(schema=name, naming_convention=NAMING_CONVENTION)

    class Base(DeclarativeBase):
        __abstract__ = True

    Base.metadata = metadata
    outbox = Table(
        "outbox",
        metadata,
        Column("id", String(26), primary_key=True),
        Column("topic", String(249), nullable=False),
        Column("key", String(300)),
        Column("payload", LargeBinary, nullable=False),
        Column("created_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
        Column("published_at", DateTime(timezone=True)),
    )
    Index(
        "ix_outbox_unpublished",
        outbox.c.id,
        postgresql_where=outbox.c.published_at.is_(None),
    )
    processed = Table(
        "processed_events",
        metadata,
        Column("consumer", String(100), primary_key=True),
        Column("event_id", String(26), primary_key=True),
        Column("applied_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    )
    return ServiceSchema(name=name, base=Base, outbox=outbox, processed_events=processed)


async def claim_event(
    session: AsyncSession, processed_events: Table, consumer: str, event_id: str
) -> bool:
    """Record in the caller's transaction that ``consumer`` applies ``event_id``.

    Returns False when it was applied before, and the caller skips the effect. The claim commits
    or rolls back together with the effect, so a crash between the two cannot double-apply.
    """
    result = await session.execute(
        insert(processed_events)
        .values(consumer=consumer, event_id=event_id)
        .on_conflict_do_nothing()
        .returning(processed_events.c.event_id)
    )
    return result.first() is not None


async def claim_events(
    session: AsyncSession, processed_events: Table, consumer: str, event_ids: Sequence[str]
) -> set[str]:
    """`claim_event` for many events in one statement: the ids not applied before."""
    unique = list(dict.fromkeys(event_ids))
    if not unique:
        return set()
    result = await session.execute(
        insert(processed_events)
        .values([{"consumer": consumer, "event_id": event_id} for event_id in unique])
        .on_conflict_do_nothing()
        .returning(processed_events.c.event_id)
    )
    return {row[0] for row in result}


async def get_owned(
    session: AsyncSession, table: Table, row_id: str, owner_id: str, *, what: str
) -> dict[str, Any]:
    """The row ``row_id`` of ``table`` if ``owner_id`` owns it (``user_id`` column).

    Someone else's row answers exactly like a missing one (404), so ids reveal nothing.
    """
    row = (
        await session.execute(
            select(table).where(table.c.id == row_id, table.c.user_id == owner_id)
        )
    ).first()
    if row is None:
        raise NotFound(f"no {what} {row_id!r}")
    return dict(row._mapping)


async def list_owned(
    session: AsyncSession, table: Table, owner_id: str, *, limit: int = 100
) -> list[dict[str, Any]]:
    """``owner_id``'s rows of ``table``, newest first (ids are ULIDs, so id order is time)."""
    rows = (
        await session.execute(
            select(table)
            .where(table.c.user_id == owner_id)
            .order_by(table.c.id.desc())
            .limit(limit)
        )
    ).all()
    return [dict(r._mapping) for r in rows]


_COPY_TYPES = {"int8": ">i8", "float8": ">f8"}
_COPY_HEADER = 19  # signature (11), flags (4), header extension length (4, zero)
_COPY_TRAILER = 2


async def copy_columns(
    session: AsyncSession, query: str, *args: Any, columns: Sequence[tuple[str, str]]
) -> dict[str, npt.NDArray[Any]]:
    """The result of ``query`` (asyncpg placeholders ``$1``...) as one NumPy array per column,
    read with a binary ``COPY`` and parsed in one `numpy.frombuffer`: no Python object per row
    (100,000 rows of three columns in a few milliseconds instead of a hundred).

    ``columns`` names the query's columns in order with their PostgreSQL type, ``int8`` or
    ``float8``; none may be NULL (a NULL is refused, never misread).
    """
    fields: list[tuple[str, str]] = [("_count", ">i2")]
    for name, kind in columns:
        fields += [(f"_{name}_len", ">i4"), (name, _COPY_TYPES[kind])]
    row = np.dtype(fields)
    connection = await session.connection()
    raw = (await connection.get_raw_connection()).driver_connection
    if raw is None:
        raise DependencyUnavailable("the database connection is closed")
    sink = io.BytesIO()
    await raw.copy_from_query(query, *args, output=sink, format="binary")
    data = sink.getbuffer()[_COPY_HEADER : sink.tell() - _COPY_TRAILER]
    rows = np.frombuffer(data, dtype=row)
    for name, _ in columns:
        if rows.shape[0] and not np.all(rows[f"_{name}_len"] == 8):
            raise ValueError(f"column {name} has NULLs; copy_columns reads NOT NULL columns")
    return {name: rows[name].astype(_COPY_TYPES[kind][1:]) for name, kind in columns}


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
