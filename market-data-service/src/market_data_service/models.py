"""Tables the market data service owns, all in the ``market`` schema.

``bars`` is the durable history (one row per owner, symbol, timeframe and open time);
``series`` keeps a per-series summary up to date in the same transactions, so listing symbols
never scans history. ``owner`` is a user id, or `PLATFORM` for the platform's public reference
data (see `market_data_service.owners`); ``symbols`` and ``symbol_shares`` say who owns a
symbol and who else may read it. ``imports`` and ``replays`` are per-user jobs; ``gaps``
records ranges a provider could not fill. The DDL lives in ``migrations/versions``; these
objects describe it for queries.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Integer,
    Sequence,
    String,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from algotrade.db import service_schema

PLATFORM = ""
"""The owner of the platform's public reference data (a NULL cannot sit in a primary key)."""

SCHEMA = service_schema("market")
Base = SCHEMA.base
metadata = Base.metadata

bar_version_seq = Sequence("bar_version_seq", metadata=metadata, schema="market")

bars = Table(
    "bars",
    metadata,
    Column("owner", String(100), primary_key=True),
    Column("symbol", String(32), primary_key=True),
    Column("timeframe", String(3), primary_key=True),
    Column("ts", DateTime(timezone=True), primary_key=True),
    Column("open", Float(53), nullable=False),
    Column("high", Float(53), nullable=False),
    Column("low", Float(53), nullable=False),
    Column("close", Float(53), nullable=False),
    Column("volume", Float(53), nullable=False),
    Column("source", String(32), nullable=False),
    Column("revision", Integer, nullable=False, server_default="0"),
    Column("version", BigInteger, nullable=False, server_default=bar_version_seq.next_value()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

series = Table(
    "series",
    metadata,
    Column("owner", String(100), primary_key=True),
    Column("symbol", String(32), primary_key=True),
    Column("timeframe", String(3), primary_key=True),
    Column("first_ts", DateTime(timezone=True), nullable=False),
    Column("last_ts", DateTime(timezone=True), nullable=False),
    Column("bar_count", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

imports = Table(
    "imports",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("user_id", String(100), nullable=False, index=True),
    Column("state", String(16), nullable=False),
    Column("origin", String(8), nullable=False),  # upload | path
    Column("owner", String(100), nullable=False, server_default=""),  # whose series it writes
    Column("filename", String(300), nullable=False),
    Column("file_format", String(8), nullable=False),  # csv | parquet
    Column("symbol", String(32), nullable=False),
    Column("timeframe", String(3), nullable=False),
    Column("atomic", Boolean, nullable=False),
    Column("bytes_total", BigInteger, nullable=False, server_default="0"),
    Column("bytes_done", BigInteger, nullable=False, server_default="0"),
    Column("rows_read", BigInteger, nullable=False, server_default="0"),
    Column("rows_rejected", BigInteger, nullable=False, server_default="0"),
    Column("accepted", BigInteger, nullable=False, server_default="0"),
    Column("duplicate", BigInteger, nullable=False, server_default="0"),
    Column("corrected", BigInteger, nullable=False, server_default="0"),
    Column("errors", JSONB, nullable=False, server_default="[]"),
    Column("message", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("finished_at", DateTime(timezone=True)),
)

replays = Table(
    "replays",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("user_id", String(100), nullable=False, index=True),
    Column("state", String(16), nullable=False),
    Column("source_owner", String(100), nullable=False, server_default=""),
    Column("symbol", String(32), nullable=False),
    Column("target_symbol", String(32), nullable=False),
    Column("timeframe", String(3), nullable=False),
    Column("speed", Float(53)),  # None: as fast as possible
    Column("start_ts", DateTime(timezone=True)),
    Column("end_ts", DateTime(timezone=True)),
    Column("bars_total", BigInteger, nullable=False, server_default="0"),
    Column("bars_emitted", BigInteger, nullable=False, server_default="0"),
    Column("last_ts", DateTime(timezone=True)),
    Column("message", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("finished_at", DateTime(timezone=True)),
)

gaps = Table(
    "gaps",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("owner", String(100), nullable=False, server_default=""),
    Column("symbol", String(32), nullable=False),
    Column("timeframe", String(3), nullable=False),
    Column("start_ts", DateTime(timezone=True), nullable=False),
    Column("end_ts", DateTime(timezone=True), nullable=False),  # exclusive
    Column("reason", String(64), nullable=False),
    Column("source", String(32), nullable=False),
    Column("detail", Text),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

symbols = Table(
    "symbols",
    metadata,
    Column("owner", String(100), primary_key=True),
    Column("symbol", String(32), primary_key=True),
    Column("visibility", String(8), nullable=False, server_default="private"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

symbol_shares = Table(
    "symbol_shares",
    metadata,
    Column("owner", String(100), primary_key=True),
    Column("symbol", String(32), primary_key=True),
    Column("grantee", String(100), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
