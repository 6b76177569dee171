"""Tables the backtesting service owns, all in the ``backtest`` schema.

``jobs`` holds every backtest and sweep with its status; ``sweep_chunks`` tracks which chunks
of a sweep are stored (a chunk is marked done once, which is what makes a redelivered chunk
harmless); ``sweep_results`` holds one row of metrics per combination for ranking. Full results
(equity, trades) live in S3. ``legacy_ids`` maps each Beta1 backtest to the job it became
(`backtesting_service.beta1`).
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from algotrade.beta1 import legacy_ids_table
from algotrade.db import service_schema

SCHEMA = service_schema("backtest")
Base = SCHEMA.base
metadata = Base.metadata

QUEUED: Final = "queued"
RUNNING: Final = "running"
COMPLETED: Final = "completed"
FAILED: Final = "failed"
CANCELLED: Final = "cancelled"
STATUSES: Final = (QUEUED, RUNNING, COMPLETED, FAILED, CANCELLED)
ACTIVE: Final = (QUEUED, RUNNING)

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("user_id", String(100), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("strategy_id", String(100)),
    Column("strategy_version", Integer),
    # None only for a backtest migrated from Beta1 that ran no Beta2 plan (no strategy, or a
    # strategy migrated as a draft).
    Column("plan_id", String(64)),
    Column("symbol", String(32), nullable=False),
    Column("timeframe", String(8), nullable=False),
    Column("start_at", DateTime(timezone=True), nullable=False),
    Column("end_at", DateTime(timezone=True), nullable=False),
    Column("config", JSONB, nullable=False),
    Column("config_id", String(64), nullable=False),
    # What the worker needs to run the job: the graph as validated, params, the sweep spec,
    # and the plan compiled at submission ("plan", `Plan.to_bytes` text; absent in old jobs).
    Column("spec", JSONB, nullable=False),
    Column("combinations", Integer, nullable=False, server_default="1"),
    Column("chunks_total", Integer, nullable=False, server_default="1"),
    Column("chunks_done", Integer, nullable=False, server_default="0"),
    Column("progress", Float, nullable=False, server_default="0"),
    Column("bars", BigInteger),
    Column("summary", JSONB),
    Column("error", Text),
    Column("created_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    CheckConstraint("kind IN ('backtest', 'sweep')", name="kind"),
    CheckConstraint(
        "status IN ('queued', 'running', 'completed', 'failed', 'cancelled')", name="status"
    ),
)
Index("ix_jobs_user_id_id", jobs.c.user_id, jobs.c.id)
Index("ix_jobs_user_id_strategy_id", jobs.c.user_id, jobs.c.strategy_id, jobs.c.id)

sweep_chunks = Table(
    "sweep_chunks",
    metadata,
    Column("job_id", String(26), ForeignKey(jobs.c.id, ondelete="CASCADE"), primary_key=True),
    Column("chunk", Integer, primary_key=True),
    Column("first", Integer, nullable=False),
    Column("last", Integer, nullable=False),
    Column("done_at", DateTime(timezone=True)),
)

sweep_results = Table(
    "sweep_results",
    metadata,
    Column("job_id", String(26), ForeignKey(jobs.c.id, ondelete="CASCADE"), primary_key=True),
    Column("combination", Integer, primary_key=True),
    Column("params", JSONB, nullable=False),
    Column("metrics", JSONB, nullable=False),
    Column("folds", JSONB, nullable=False),
)

legacy_ids = legacy_ids_table(metadata)
