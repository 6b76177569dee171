"""Which errors mean that a dependency could not be reached, not that the work is wrong.

A connection refused, dropped or timed out, PostgreSQL starting up or shutting down, Redis
still loading, an upstream service restarting: each passes with the outage. So an HTTP request
that meets one is answered 503 (`algotrade.middleware`), never 500, and a consumer keeps
retrying its message while one lasts (`algotrade.bus.RetryPolicy.outage_seconds`) instead of
giving up on it. A service that can say more (which store, which upstream) raises
`DependencyUnavailable` itself; this catches what slips past.
"""

from __future__ import annotations

import aiokafka.errors
import asyncpg.exceptions
import botocore.exceptions
import httpx
import redis.exceptions
import sqlalchemy.exc

from algotrade.errors import DependencyUnavailable

# What each means, by the library that raises it; checked along the exception's causes, since
# SQLAlchemy wraps asyncpg's errors and services wrap their clients'.
_UNREACHABLE: tuple[tuple[str, tuple[type[BaseException], ...]], ...] = (
    (
        "the database",
        (
            asyncpg.exceptions.PostgresConnectionError,  # SQLSTATE class 08
            asyncpg.exceptions.CannotConnectNowError,  # starting up, in recovery
            asyncpg.exceptions.AdminShutdownError,
            asyncpg.exceptions.CrashShutdownError,
            asyncpg.exceptions.TooManyConnectionsError,
            sqlalchemy.exc.OperationalError,
            sqlalchemy.exc.InterfaceError,
            sqlalchemy.exc.TimeoutError,  # no pooled connection came free in time
        ),
    ),
    ("Redis", (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)),
    ("Kafka", (aiokafka.errors.KafkaConnectionError, aiokafka.errors.KafkaTimeoutError)),
    ("S3", (botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError)),
    ("an upstream service", (httpx.TransportError,)),
    ("a dependency", (DependencyUnavailable, ConnectionError, TimeoutError)),
)


def unreachable(exc: BaseException) -> str | None:
    """What could not be reached when ``exc`` (or the error it was raised from, or a DBAPI
    error's original) means an outage, e.g. ``"the database"``; None when it means anything
    else."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sqlalchemy.exc.DBAPIError) and current.connection_invalidated:
            return "the database"
        for what, kinds in _UNREACHABLE:
            if isinstance(current, kinds):
                return what
        # Only explicit causes: an error raised while handling an outage is not one itself.
        current = getattr(current, "orig", None) or current.__cause__
    return None
