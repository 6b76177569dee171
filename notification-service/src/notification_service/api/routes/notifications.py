"""``/api/notifications``: status per family, and the families' modes (admins change them)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field

from algotrade.strict_json import api_router
from notification_service.api.deps import AdminDep, ReaderDep, ServicesDep
from notification_service.families import Family, Mode
from notification_service.features import Change

router = api_router(prefix="/api/notifications", tags=["notifications"])


class ParityPublic(BaseModel):
    checked: int
    mismatches: int
    moved_on: int = Field(description="not compared: the resource changed again meanwhile")
    unchecked: int = Field(description="pushes that state nothing REST could confirm")
    skipped: int = Field(description="not compared: too many waiting, or REST did not answer")


class FamilyStatus(BaseModel):
    mode: Mode
    pushed: int = Field(description="messages put in at least one socket's queue")
    deliveries: int = Field(description="messages put in sockets' queues, one per socket")
    withheld: int = Field(description="messages not pushed because the family is in rest mode")
    subscribers: int
    parity: ParityPublic
    last_message_at: float | None = Field(description="epoch seconds of the last event seen")


class StatusPublic(BaseModel):
    instances: int
    sockets: int
    subscriptions: int
    families: dict[Family, FamilyStatus]


class FeaturesPublic(BaseModel):
    features: dict[Family, Mode]


class ModeChange(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    mode: Mode
    reason: str | None = Field(default=None, max_length=500)


class ChangePublic(BaseModel):
    id: str
    family: Family
    previous: Mode
    mode: Mode
    changed_by: str
    reason: str | None
    changed_at: datetime


class ChangesPublic(BaseModel):
    data: list[ChangePublic]


def _change(change: Change) -> dict[str, Any]:
    return asdict(change)


@router.get("/status", response_model=StatusPublic, summary="Per family: mode, pushes, parity")
async def status(principal: ReaderDep, services: ServicesDep) -> dict[str, Any]:
    return await services.status.status()


@router.get("/features", response_model=FeaturesPublic, summary="Each family's mode")
async def features(principal: ReaderDep, services: ServicesDep) -> dict[str, Any]:
    return {"features": services.features.modes}


@router.put(
    "/features/{family}",
    response_model=ChangePublic,
    summary="Switch a family between rest, shadow and live (notifications-admin)",
)
async def set_feature(
    family: Family, body: ModeChange, principal: AdminDep, services: ServicesDep
) -> dict[str, Any]:
    """Persisted and audited; every instance applies it at once and tells its clients in a
    ``features`` message. Rolling back is the same call with the previous mode."""
    change = await services.features.set(family, body.mode, principal.user_id, body.reason)
    return _change(change)


@router.get(
    "/features/changes",
    response_model=ChangesPublic,
    summary="The audit trail of mode changes, newest first (notifications-admin)",
)
async def changes(
    principal: AdminDep,
    services: ServicesDep,
    limit: int = Query(default=50, ge=1, le=500),
) -> dict[str, Any]:
    return {"data": [_change(c) for c in await services.features.history(limit)]}
