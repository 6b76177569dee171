"""Tables the market data service owns, all in the ``market`` schema."""

from __future__ import annotations

from algotrade.db import service_schema

SCHEMA = service_schema("market")
Base = SCHEMA.base
