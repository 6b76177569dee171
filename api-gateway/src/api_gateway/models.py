"""Tables the API gateway owns, all in the ``gateway`` schema."""

from __future__ import annotations

from algotrade.db import service_schema

SCHEMA = service_schema("gateway")
Base = SCHEMA.base
