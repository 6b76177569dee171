"""Payloads of the events the strategy service publishes on ``strategy.events.v1``.

In the shared library, like every event schema, so any consumer can decode them.

Every event is keyed by strategy id (one partition per strategy keeps its events in order) and
staged in the outbox in the transaction that makes the change.

- ``strategy.created``: a strategy and its version 1 exist.
- ``strategy.version_created``: a graph was saved as version ``version`` (also sent for
  version 1, right after ``strategy.created``, so a consumer of versions needs only this type).
- ``strategy.deleted``: the strategy is soft-deleted; its versions remain readable in storage.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from algotrade.events import default_registry

STRATEGY_CREATED = "strategy.created"
STRATEGY_VERSION_CREATED = "strategy.version_created"
STRATEGY_DELETED = "strategy.deleted"


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    strategy_id: str = Field(min_length=1, max_length=26)
    owner_id: str = Field(min_length=1, max_length=100)


@default_registry.register(STRATEGY_CREATED)
class StrategyCreated(_Payload):
    name: str
    version: int = Field(ge=1)
    plan_id: str
    template: str | None = None


@default_registry.register(STRATEGY_VERSION_CREATED)
class StrategyVersionCreated(_Payload):
    version: int = Field(ge=1)
    plan_id: str
    previous_plan_id: str | None = None


@default_registry.register(STRATEGY_DELETED)
class StrategyDeleted(_Payload):
    last_version: int = Field(ge=1)
