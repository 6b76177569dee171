"""Agent registration, composed at the gateway: the agent from the forward-test service, its
API key from the gateway, in one answer.

An execution agent (a MetaTrader or NinjaTrader terminal) authenticates with an API key that
acts on that agent only. The forward-test service owns agents; the gateway owns keys. So
``POST /api/agents`` (and ``POST /api/agents/{id}/keys``, a new key for an existing agent) are
the gateway's own routes: it forwards the registration, then mints a key holding
``agents:read``, ``agents:write``, ``market:read``, ``market:write`` and the binding scope
``agent:<id>``, which the forward-test service enforces (another agent's paths are 403). The key
is shown in this answer only. If the key cannot be made, the new agent is deleted again, so a
failed registration leaves nothing behind. Every other ``/api/agents`` path is proxied as usual.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson
from fastapi import Depends, Request, Response

from algotrade.auth import Principal
from algotrade.errors import BadRequest, PayloadTooLarge
from algotrade.logs import request_id_var
from algotrade.service import SessionDep
from algotrade.strict_json import api_router
from api_gateway.api.deps import CurrentUser, ServicesDep, limit_by_principal
from api_gateway.errors import BadGateway
from api_gateway.routing import AGENT_KEYS_PATH as KEYS_PATH
from api_gateway.routing import AGENTS_PATH as REGISTER_PATH
from api_gateway.services import Gateway

UPSTREAM = "forward-test-service"
BODY_MAX = 16 * 1024


def agent_key_scopes(agent_id: str) -> list[str]:
    return ["agents:read", "agents:write", "market:read", "market:write", f"agent:{agent_id}"]


router = api_router(tags=["agents"])


async def _forward(
    gateway: Gateway,
    principal: Principal,
    method: str,
    path: str,
    body: bytes | None = None,
) -> httpx.Response:
    upstream = gateway.upstreams[UPSTREAM]
    headers = {
        "authorization": f"Bearer {gateway.internal_tokens.for_principal(principal)}",
        "content-type": "application/json",
    }
    if (request_id := request_id_var.get()) is not None:
        headers["x-request-id"] = request_id
    try:
        return await upstream.client.request(method, path, content=body, headers=headers)
    except httpx.HTTPError as exc:
        raise BadGateway(f"the forward-test service did not answer: {type(exc).__name__}") from None


def _passed_through(answer: httpx.Response) -> Response:
    return Response(
        answer.content,
        status_code=answer.status_code,
        media_type=answer.headers.get("content-type", "application/json"),
    )


async def _read_body(request: Request) -> bytes:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > BODY_MAX:
            raise PayloadTooLarge(f"an agent registration is at most {BODY_MAX} bytes")
    return body


async def _mint(gateway: Gateway, session: Any, principal: Principal, agent: dict[str, Any]) -> str:
    _, key = await gateway.api_keys.create(
        session,
        user_id=principal.user_id,
        name=f"agent {agent['name']}"[:100],
        scopes=agent_key_scopes(agent["id"]),
        expires_in_days=None,
    )
    await session.commit()
    return key


@router.post(
    REGISTER_PATH,
    status_code=201,
    include_in_schema=False,  # the forward-test service documents it (`AgentCreated`)
    dependencies=[Depends(limit_by_principal("write"))],
)
async def register_agent(
    request: Request, principal: CurrentUser, session: SessionDep, gateway: ServicesDep
) -> Response:
    created = await _forward(gateway, principal, "POST", REGISTER_PATH, await _read_body(request))
    if created.status_code != 201:
        return _passed_through(created)
    agent = created.json()
    try:
        key = await _mint(gateway, session, principal, agent)
    except BaseException:
        await session.rollback()
        await _forward(gateway, principal, "DELETE", f"{REGISTER_PATH}/{agent['id']}")
        raise
    return Response(
        orjson.dumps({**agent, "api_key": key}), status_code=201, media_type="application/json"
    )


@router.post(
    "/api/agents/{agent_id}/keys",
    status_code=201,
    include_in_schema=False,
    dependencies=[Depends(limit_by_principal("write"))],
)
async def new_agent_key(
    agent_id: str, principal: CurrentUser, session: SessionDep, gateway: ServicesDep
) -> Response:
    """A new key for one of your agents (revoke the old one under ``/api/api-keys``)."""
    if KEYS_PATH.match(f"/api/agents/{agent_id}/keys") is None:
        raise BadRequest("not an agent id")
    found = await _forward(gateway, principal, "GET", f"{REGISTER_PATH}/{agent_id}")
    if found.status_code != 200:
        return _passed_through(found)
    agent = found.json()
    key = await _mint(gateway, session, principal, agent)
    return Response(
        orjson.dumps({"agent_id": agent_id, "api_key": key}),
        status_code=201,
        media_type="application/json",
    )
