"""Route dependencies as ``Annotated`` aliases: the service's domain objects (one
``ServicesDep``) and scoped principals."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from algotrade.auth import CurrentPrincipal, Principal
from algotrade.service import services_dependency
from forward_test_service.services import SessionServices


async def session_reader(principal: CurrentPrincipal) -> Principal:
    principal.require_scope("sessions:read")
    return principal


async def session_writer(principal: CurrentPrincipal) -> Principal:
    principal.require_scope("sessions:write")
    return principal


async def agent_reader(principal: CurrentPrincipal) -> Principal:
    principal.require_scope("agents:read")
    return principal


async def agent_writer(principal: CurrentPrincipal) -> Principal:
    principal.require_scope("agents:write")
    return principal


ServicesDep = Annotated[SessionServices, Depends(services_dependency(SessionServices))]
ReaderDep = Annotated[Principal, Depends(session_reader)]
WriterDep = Annotated[Principal, Depends(session_writer)]
AgentReaderDep = Annotated[Principal, Depends(agent_reader)]
AgentWriterDep = Annotated[Principal, Depends(agent_writer)]
