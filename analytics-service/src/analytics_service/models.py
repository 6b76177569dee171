"""Tables the analytics service owns, all in the ``analytics`` schema."""

from __future__ import annotations

from algotrade.db import service_schema

SCHEMA = service_schema("analytics")
Base = SCHEMA.base
