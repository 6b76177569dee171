"""The scopes an API key can hold.

A scope is ``<resource>:<read|write>``. A user's own session holds ``*`` (everything its roles
allow); an API key holds only what it was created with. The gateway checks the coarse
resource-level scope of each routed request (see `api_gateway.routing`) and forwards the
principal's scopes in the internal token, so services can check finer ones.
"""

from __future__ import annotations

from typing import Literal

ALL_SCOPES = "*"

RESOURCES = ("market", "strategies", "backtests", "sessions", "agents", "analytics")

SCOPES: frozenset[str] = frozenset(
    {f"{resource}:{access}" for resource in RESOURCES for access in ("read", "write")}
    | {"notifications:read"}
)

Access = Literal["read", "write"]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def access_for(method: str) -> Access:
    return "read" if method in SAFE_METHODS else "write"


def allows(scopes: frozenset[str], required: str) -> bool:
    return ALL_SCOPES in scopes or required in scopes
