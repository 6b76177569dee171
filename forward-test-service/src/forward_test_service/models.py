"""Tables the forward-test service owns, all in the ``forward`` schema.

``sessions`` holds every forward-test session: what it runs (the plan compiled at submission,
the resolved execution config), its status and, copied from Redis periodically and on stop,
its latest checkpoint and account summary. ``revision`` grows (one sequence for all sessions)
with every change a worker must notice (created, paused, resumed, stopped, deleted), so a
worker reads only what changed on a series since it last looked. Fills (``session_orders``),
closed trades (``session_trades``), equity points and recorded gaps and corrections are keyed
by session and a sequence number or bar time, so a bar applied again after a crash writes
nothing twice.

A session migrated from Beta1 (`forward_test_service.beta1`) is history: stopped, without a
compiled plan, and without a strategy when Beta1's was not migrated (or a ``plan_id`` when it
became a draft). The ``runnable`` check keeps such a row out of every worker: only a row with a
plan can be running or paused. ``legacy_ids`` maps each Beta1 session and trade to its row.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    Sequence,
    String,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from algotrade.beta1 import legacy_ids_table
from algotrade.db import service_schema

SCHEMA = service_schema("forward")
Base = SCHEMA.base
metadata = Base.metadata

RUNNING: Final = "running"
PAUSED: Final = "paused"
STOPPED: Final = "stopped"
FAILED: Final = "failed"
STATUSES: Final = (RUNNING, PAUSED, STOPPED, FAILED)
ACTIVE: Final = (RUNNING, PAUSED)
"""Sessions a worker keeps loaded and that count against the per-user limit."""

revision_seq = Sequence("session_revision", metadata=metadata)

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("user_id", String(100), nullable=False),
    Column("status", String(16), nullable=False),
    # NULL only in a session migrated from Beta1: strategy_id and strategy_version when its
    # strategy was not migrated, plan_id also when it became a draft, plan always.
    Column("strategy_id", String(100)),
    Column("strategy_version", Integer),
    Column("plan_id", String(64)),
    Column("plan", Text),  # Plan.to_bytes() text, params applied
    Column("params", JSONB, nullable=False),
    Column("symbol", String(32), nullable=False),
    Column("timeframe", String(8), nullable=False),
    Column("owner", String(100), nullable=False),  # the series' owner; "" for the platform
    Column("series_key", String(200), nullable=False),  # the market.bars.v1 key
    Column("config", JSONB, nullable=False),  # the ResolvedConfig
    Column("config_id", String(64), nullable=False),
    Column("capital", Float, nullable=False),
    Column("mode", String(8), nullable=False, server_default="paper"),  # paper | agent
    Column("agent_id", String(26)),  # agent mode: the agent the orders go to
    Column("agent_symbol", String(64)),  # the agent's name of the symbol (default: symbol)
    Column("warmup", Integer, nullable=False),
    Column("revision", BigInteger, nullable=False),
    # The latest checkpoint copied to PostgreSQL (Redis has newer ones between copies).
    Column("snapshot", LargeBinary),
    Column("bars_applied", BigInteger, nullable=False, server_default="0"),
    Column("last_bar_ts", BigInteger),  # epoch ms of the last applied bar's open time
    Column("summary", JSONB),  # position, cash, equity, warmed_up, counters
    Column("error", Text),
    Column("warmed_up_at", DateTime(timezone=True)),  # set once: session.warmed_up is sent once
    Column("created_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    Column("updated_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    Column("stopped_at", DateTime(timezone=True)),
    Column("deleted_at", DateTime(timezone=True)),
    CheckConstraint("status IN ('running', 'paused', 'stopped', 'failed')", name="status"),
    CheckConstraint("status IN ('stopped', 'failed') OR plan IS NOT NULL", name="runnable"),
)
Index("ix_sessions_user_id_id", sessions.c.user_id, sessions.c.id)
Index("ix_sessions_series_key_revision", sessions.c.series_key, sessions.c.revision)

# Per series: how many sessions follow it and the sum of their revisions, kept by a trigger
# on ``sessions`` (migration 0007): what `SessionStore.series_version` reads on every bar.
series_versions = Table(
    "series_versions",
    metadata,
    Column("series_key", String(200), primary_key=True),
    Column("sessions", BigInteger, nullable=False),
    Column("revisions", Numeric, nullable=False),
)

session_orders = Table(
    "session_orders",
    metadata,
    Column(
        "session_id",
        String(26),
        ForeignKey(sessions.c.id, ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("seq", Integer, primary_key=True),
    Column("ts", BigInteger, nullable=False),
    Column("side", String(4), nullable=False),
    Column("quantity", Float, nullable=False),
    Column("price", Float, nullable=False),
    Column("fee", Float, nullable=False),
    Column("reason", String(32), nullable=False),
    # Agent mode: the command that carries this order to the agent, and what came back.
    Column("command_id", String(26)),
    Column("agent_state", String(16)),  # queued | waiting | executed | rejected | failed
    Column("agent_ticket", String(64)),
    Column("agent_price", Float),
    Column("agent_volume", Float),
    Column("agent_error", Text),
    # The commission the ack reported (signed as the terminal signs it: negative, charged).
    Column("agent_commission", Float),
)

Index("ix_session_orders_command", session_orders.c.command_id)
Index(
    "ix_session_orders_ticket",
    session_orders.c.agent_ticket,
    postgresql_where=session_orders.c.agent_ticket.isnot(None),
)

# Agent mode: the deals by which the terminal closed (part of) a session's position by itself
# (its stop or target, a margin call, the trader's hand), as the agent's trade syncs reported
# them, each recorded once per agent and on the entry that opened the position
# (`forward_test_service.agent_orders`, applied by `forward_test_service.terminal`).
terminal_deals = Table(
    "terminal_deals",
    metadata,
    Column("agent_id", String(26), primary_key=True),
    Column("ticket", String(64), primary_key=True),
    # The terminal's deal id, or for a deal reported without one its time, volume and price.
    Column("deal", Text, primary_key=True),
    Column("session_id", String(26), nullable=False),
    Column("entry_seq", Integer, nullable=False),
    Column("volume", Float),  # null: all that was left (a close recorded before deals were)
    Column("price", Float, nullable=False),
    Column("ts", BigInteger, nullable=False),  # epoch ms, the terminal's clock
    Column("commission", Float, nullable=False, server_default="0"),
    Column("swap", Float, nullable=False, server_default="0"),
    # Carried by a session.terminal already (`forward_test_service.terminal.settled`).
    Column("reported", Boolean, nullable=False, server_default="false"),
    ForeignKeyConstraint(
        ["session_id", "entry_seq"],
        [session_orders.c.session_id, session_orders.c.seq],
        ondelete="CASCADE",
    ),
)
Index("ix_terminal_deals_session", terminal_deals.c.session_id, terminal_deals.c.entry_seq)

session_trades = Table(
    "session_trades",
    metadata,
    Column(
        "session_id",
        String(26),
        ForeignKey(sessions.c.id, ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("seq", Integer, primary_key=True),
    Column("side", String(5), nullable=False),
    Column("entry_ts", BigInteger, nullable=False),
    Column("exit_ts", BigInteger, nullable=False),
    Column("entry_price", Float, nullable=False),
    Column("exit_price", Float, nullable=False),
    Column("quantity", Float, nullable=False),
    Column("pnl", Float, nullable=False),
    Column("fees", Float, nullable=False),
    Column("exit_reason", String(32), nullable=False),
)

session_equity = Table(
    "session_equity",
    metadata,
    Column(
        "session_id",
        String(26),
        ForeignKey(sessions.c.id, ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("ts", BigInteger, primary_key=True),
    Column("equity", Float, nullable=False),
    Column("position", Float, nullable=False),
)

session_anomalies = Table(
    "session_anomalies",
    metadata,
    Column(
        "session_id",
        String(26),
        ForeignKey(sessions.c.id, ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("kind", String(16), primary_key=True),  # gap | correction
    Column("ts", BigInteger, primary_key=True),  # a gap: the first missing open time
    Column("revision", Integer, primary_key=True, server_default="0"),
    Column("bars", Integer, nullable=False, server_default="1"),  # a gap: how many are missing
    Column("detail", JSONB),
    Column("recorded_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    CheckConstraint("kind IN ('gap', 'correction')", name="kind"),
)

# Execution agents. The live state (connection, command queue, positions) is in Redis (see
# `forward_test_service.agents`); PostgreSQL keeps who owns which agent and every ended command.
agents = Table(
    "agents",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("user_id", String(100), nullable=False),
    Column("name", String(100), nullable=False),
    Column("platform", String(16), nullable=False),
    Column("account_number", String(64), nullable=False),
    Column("broker", String(100), nullable=False),
    Column("currency", String(8), nullable=False),
    Column("heartbeat_seconds", Float, nullable=False),
    Column("created_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    Column("deleted_at", DateTime(timezone=True)),
    CheckConstraint("platform IN ('mt5', 'ninjatrader', 'other')", name="platform"),
)
Index("ix_agents_user_id_id", agents.c.user_id, agents.c.id)

agent_commands = Table(
    "agent_commands",
    metadata,
    Column(
        "agent_id",
        String(26),
        ForeignKey(agents.c.id, ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("command_id", String(26), primary_key=True),
    Column("user_id", String(100), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("idempotency_key", String(64), nullable=False),
    Column("session_id", String(26)),
    Column("detail", JSONB, nullable=False),  # the command and its result as the agent gave it
    Column("created_ms", BigInteger, nullable=False),
    Column("ended_ms", BigInteger, nullable=False),
    CheckConstraint("outcome IN ('executed', 'rejected', 'failed', 'expired')", name="outcome"),
)

legacy_ids = legacy_ids_table(metadata)
"""Beta1 rows imported: kind ``session`` (new_id: the session id) and ``trade`` (new_id:
``<session id>/trades/<seq>``, or ``<session id>/orders/<seq>`` for a trade still open)."""
