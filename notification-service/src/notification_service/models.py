"""Tables the notification service owns, in the ``notify`` schema: each message family's mode
(a row once an admin changed it; the settings give the rest) and every change, with who made it
and why."""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Column, DateTime, Index, String, Table, func

from algotrade.db import service_schema

SCHEMA = service_schema("notify")
Base = SCHEMA.base
metadata = Base.metadata
_MODES = "mode IN ('rest', 'shadow', 'live')"

feature_modes = Table(
    "feature_modes",
    metadata,
    Column("family", String(32), primary_key=True),
    Column("mode", String(8), nullable=False),
    Column("changed_by", String(100), nullable=False),
    Column("changed_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    CheckConstraint(_MODES, name="mode_known"),
)

feature_changes = Table(
    "feature_changes",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("family", String(32), nullable=False),
    Column("previous", String(8), nullable=False),
    Column("mode", String(8), nullable=False),
    Column("changed_by", String(100), nullable=False),
    Column("reason", String(500)),
    Column("changed_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    CheckConstraint(_MODES, name="change_mode_known"),
    Index("ix_feature_changes_changed_at", "changed_at"),
)
