"""Tables the strategy service owns, all in the ``strategy`` schema."""

from __future__ import annotations

from algotrade.db import service_schema

SCHEMA = service_schema("strategy")
Base = SCHEMA.base
