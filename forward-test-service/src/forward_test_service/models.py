"""Tables the forward-test service owns, all in the ``forward`` schema."""

from __future__ import annotations

from algotrade.db import service_schema

SCHEMA = service_schema("forward")
Base = SCHEMA.base
