"""Dependencies of the gateway's own endpoints, as `Annotated` aliases."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from algotrade.auth import Principal
from algotrade.errors import Forbidden
from algotrade.service import services_dependency
from api_gateway.config import RouteClass
from api_gateway.proxy import rate_limit_subject
from api_gateway.scopes import ALL_SCOPES
from api_gateway.services import Gateway

# Declared for the OpenAPI document (Swagger's "Authorize" button); the header values are read
# by `Authenticator`, which also knows API keys sent as bearer tokens.
_bearer = HTTPBearer(auto_error=False, description="An access token, or an API key")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key")


get_gateway = services_dependency(Gateway)
ServicesDep = Annotated[Gateway, Depends(get_gateway)]


async def current_principal(
    request: Request,
    gateway: ServicesDep,
    _bearer_credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key)],
) -> Principal:
    """Whoever the request's access token or API key names (401 otherwise)."""
    return await gateway.authenticator.authenticate(request.headers.get("authorization"), api_key)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


async def current_user(principal: CurrentPrincipal) -> Principal:
    """A signed-in user's own session; API keys may not manage credentials."""
    if principal.api_key_id is not None or ALL_SCOPES not in principal.scopes:
        raise Forbidden("this needs a signed-in user session, not an API key")
    return principal


CurrentUser = Annotated[Principal, Depends(current_user)]


def client_address(request: Request) -> str:
    """The client's address (uvicorn resolves X-Forwarded-For from trusted proxies only)."""
    return request.client.host if request.client else "unknown"


ClientAddress = Annotated[str, Depends(client_address)]


def limit_by_principal(route_class: RouteClass) -> Callable[..., Awaitable[None]]:
    """A dependency counting the request against the caller's limit for ``route_class``."""

    async def dependency(
        response: Response, gateway: ServicesDep, principal: CurrentPrincipal
    ) -> None:
        decision = await gateway.limiter.check(route_class, rate_limit_subject(principal))
        response.headers.update(decision.headers())

    return dependency


def limit_by_address(route_class: RouteClass) -> Callable[..., Awaitable[None]]:
    """The same for endpoints used before there is a principal (sign-in, refresh)."""

    async def dependency(response: Response, gateway: ServicesDep, address: ClientAddress) -> None:
        decision = await gateway.limiter.check(route_class, f"a:{address}")
        response.headers.update(decision.headers())

    return dependency
