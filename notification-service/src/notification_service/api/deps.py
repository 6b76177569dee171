"""Route dependencies: the service's domain objects (one ``ServicesDep``) and principals."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from algotrade.auth import NOTIFICATIONS_ADMIN_ROLE, CurrentPrincipal, Principal
from algotrade.errors import Forbidden
from algotrade.service import services_dependency
from notification_service.services import Notifications


async def reader(principal: CurrentPrincipal) -> Principal:
    principal.require_scope("notifications:read")
    return principal


async def admin(principal: CurrentPrincipal) -> Principal:
    principal.require_scope("notifications:write")
    if not principal.has_role(NOTIFICATIONS_ADMIN_ROLE):
        raise Forbidden(f"changing modes needs the {NOTIFICATIONS_ADMIN_ROLE!r} role")
    return principal


ServicesDep = Annotated[Notifications, Depends(services_dependency(Notifications))]
ReaderDep = Annotated[Principal, Depends(reader)]
AdminDep = Annotated[Principal, Depends(admin)]
