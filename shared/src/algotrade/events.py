"""The event envelope, topic names and the registry of event payload schemas.

Every Kafka message on the platform is one `Envelope` serialised with orjson. Its ``type``
names a payload model registered here, so a consumer can turn bytes into a typed payload or a
typed `EventError`, never a crash.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from ulid import ULID

from algotrade.errors import EventError

MAX_EVENT_BYTES = 1_000_000
# A ULID as `new_event_id` writes it: 26 characters of Crockford base32, upper case.
ULID_PATTERN = "^[0-7][0-9A-HJKMNP-TV-Z]{25}$"


def new_event_id() -> str:
    """A ULID: unique, and sortable by creation time (first 48 bits are milliseconds)."""
    return str(ULID())


# Standard base32 to the Crockford alphabet ULIDs are written in.
# Crockford's base32 digits, as ULIDs write them, indexed by 5-bit value.
_CROCKFORD = np.frombuffer(b"0123456789ABCDEFGHJKMNPQRSTVWXYZ", dtype=np.uint8)
_FIVE_BITS = np.array([16, 8, 4, 2, 1], dtype=np.uint8)


def new_event_ids(count: int) -> list[str]:
    """``count`` ULIDs of this millisecond, as `new_event_id` writes them, at a fraction of its
    cost (a worker names thousands of events per bar): the time part is encoded once, and
    each id's 80 random bits are 16 base32 digits of one encoding of them all."""
    stamp = str(ULID())[:10]
    # All the noise in one go: 80 bits per id, read as 16 digits of 5 bits, most significant
    # first (the standard library's base32 is a Python loop over 5-byte blocks).
    bits = np.unpackbits(np.frombuffer(os.urandom(10 * count), dtype=np.uint8))
    digits = bits.reshape(-1, 5) @ _FIVE_BITS
    text = _CROCKFORD[digits].tobytes().decode("ascii")
    return [stamp + text[k : k + 16] for k in range(0, 16 * count, 16)]


class Envelope(BaseModel):
    """What every event carries around its payload."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(default_factory=new_event_id, min_length=26, max_length=26)
    type: str = Field(min_length=1, max_length=100)
    version: int = Field(default=1, ge=1)
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    producer: str = Field(min_length=1, max_length=100)
    key: str | None = Field(default=None, max_length=300)
    correlation_id: str | None = Field(default=None, max_length=100)
    user_id: str | None = Field(default=None, max_length=100)
    payload: dict[str, Any] = Field(default_factory=dict)

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))


@dataclass(frozen=True)
class Topics:
    """Versioned topic names, optionally namespaced (tests give each test its own prefix)."""

    prefix: str = ""

    def _name(self, base: str) -> str:
        return f"{self.prefix}{base}"

    @property
    def market_bars(self) -> str:
        return self._name("market.bars.v1")

    @property
    def strategy_events(self) -> str:
        return self._name("strategy.events.v1")

    @property
    def backtest_jobs(self) -> str:
        return self._name("backtest.jobs.v1")

    @property
    def backtest_events(self) -> str:
        return self._name("backtest.events.v1")

    @property
    def session_events(self) -> str:
        return self._name("session.events.v1")

    @property
    def agent_events(self) -> str:
        return self._name("agent.events.v1")

    def all(self) -> list[str]:
        return [
            self.market_bars,
            self.strategy_events,
            self.backtest_jobs,
            self.backtest_events,
            self.session_events,
            self.agent_events,
        ]

    @staticmethod
    def dlq(topic: str) -> str:
        return f"{topic}.dlq"


P = TypeVar("P", bound=BaseModel)


class EventRegistry:
    """Maps ``(type, version)`` to its payload model.

    Services register their own payloads at import of their `events` module; the shared ones
    below are registered in `default_registry`.
    """

    def __init__(self) -> None:
        self._models: dict[tuple[str, int], type[BaseModel]] = {}

    def register(self, type_: str, version: int = 1) -> Callable[[type[P]], type[P]]:
        def decorate(model: type[P]) -> type[P]:
            existing = self._models.get((type_, version))
            if existing is not None and existing is not model:
                raise ValueError(f"event type {type_} v{version} registered twice")
            self._models[(type_, version)] = model
            return model

        return decorate

    def model_for(self, type_: str, version: int) -> type[BaseModel]:
        try:
            return self._models[(type_, version)]
        except KeyError:
            raise EventError(f"unknown event type {type_!r} version {version}") from None

    def known_types(self) -> list[tuple[str, int]]:
        return sorted(self._models)

    def build(
        self,
        type_: str,
        payload: BaseModel,
        *,
        producer: str,
        key: str | None = None,
        correlation_id: str | None = None,
        user_id: str | None = None,
        version: int = 1,
    ) -> Envelope:
        """An envelope for a payload whose model must be the one registered for its type."""
        model = self.model_for(type_, version)
        if not isinstance(payload, model):
            raise EventError(f"payload for {type_!r} must be {model.__name__}")
        return Envelope(
            type=type_,
            version=version,
            producer=producer,
            key=key,
            correlation_id=correlation_id,
            user_id=user_id,
            payload=payload.model_dump(mode="json"),
        )

    def decode(self, raw: bytes | None) -> tuple[Envelope, BaseModel]:
        """Bytes to a validated envelope and its typed payload, or `EventError` saying why."""
        if raw is None:
            raise EventError("empty message (tombstone) is not an event")
        if len(raw) > MAX_EVENT_BYTES:
            raise EventError(f"event of {len(raw)} bytes exceeds {MAX_EVENT_BYTES}")
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise EventError(f"event is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise EventError("event must be a JSON object")
        try:
            envelope = Envelope.model_validate(data)
        except ValidationError as exc:
            raise EventError(f"bad envelope: {_first_errors(exc)}") from None
        model = self.model_for(envelope.type, envelope.version)
        try:
            payload = model.model_validate(envelope.payload)
        except ValidationError as exc:
            raise EventError(f"bad payload for {envelope.type}: {_first_errors(exc)}") from None
        return envelope, payload


def _first_errors(exc: ValidationError, limit: int = 3) -> str:
    parts = [f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in exc.errors()]
    return "; ".join(parts[:limit])


default_registry = EventRegistry()
"""Shared event payloads. A service module adds its own with ``@default_registry.register``."""


class TestEventPayload(BaseModel):
    """A payload for wiring checks and tests of the bus itself."""

    __test__ = False  # not a pytest class
    model_config = ConfigDict(extra="forbid")

    n: int
    note: str = ""


default_registry.register("platform.ping")(TestEventPayload)
