"""Tables the strategy service owns, all in the ``strategy`` schema.

A strategy is mutable metadata (name, description) over an append-only list of versions; each
version holds one immutable graph and the id of the plan it compiles to. Deleting a strategy
only stamps ``deleted_at``: its versions stay, because backtests and sessions reference them.
The DDL lives in ``migrations/versions/0002_strategies.py``; these mappings must match it.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from algotrade.beta1 import legacy_ids_table
from algotrade.db import service_schema

SCHEMA = service_schema("strategy")
if TYPE_CHECKING:  # a base built at run time is no type to mypy: this one stands for it

    class Base(DeclarativeBase):
        pass

else:
    Base = SCHEMA.base

ID_LENGTH = 26  # a ULID
OWNER_LENGTH = 100  # matches `Envelope.user_id`
PLAN_ID_LENGTH = 64  # SHA-256 hex


class Strategy(Base):
    __tablename__ = "strategies"
    __table_args__ = (
        CheckConstraint("current_version >= 1", name="current_version_positive"),
        # Listing a user's live strategies, newest first (the default order) ...
        Index(
            "ix_strategies_owner_updated",
            "owner_id",
            text("updated_at DESC"),
            text("id DESC"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
        # ... or by name, case-insensitively.
        Index(
            "ix_strategies_owner_name",
            "owner_id",
            text("lower(name)"),
            "id",
            postgresql_where=text("deleted_at IS NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(OWNER_LENGTH))
    name: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, server_default="")
    current_version: Mapped[int] = mapped_column(Integer)
    template_key: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class StrategyVersion(Base):
    """One saved graph. Never updated or deleted by the service.

    A version made by the API always compiles. Only the Beta1 import stores a *draft*: a graph
    that could not be mapped or does not validate, kept with every problem and no plan, so the
    author can fix it in the editor (saving makes the next, normal version).
    """

    __tablename__ = "strategy_versions"
    __table_args__ = (
        CheckConstraint("n >= 1", name="n_positive"),
        Index("ix_strategy_versions_plan_id", "plan_id"),
    )

    strategy_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("strategy.strategies.id"), primary_key=True
    )
    n: Mapped[int] = mapped_column(Integer, primary_key=True)
    graph: Mapped[dict[str, Any]] = mapped_column(JSONB)
    # None for a draft: a graph migrated from Beta1 that does not validate (see `problems`).
    plan_id: Mapped[str | None] = mapped_column(String(PLAN_ID_LENGTH))
    problems: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)
    created_by: Mapped[str] = mapped_column(String(OWNER_LENGTH))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


legacy_ids = legacy_ids_table(Base.metadata)
