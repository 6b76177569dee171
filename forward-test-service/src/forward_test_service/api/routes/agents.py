"""``/api/agents``: register execution agents, and the agent protocol itself (heartbeat,
command long-poll and acks, trade sync), plus the user's view (the command list, positions, status).

The protocol is written up for agent authors in docs/agents.md.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query, Response

from algotrade.auth import Principal
from algotrade.events import ULID_PATTERN
from algotrade.problems import PROBLEM_JSON
from algotrade.strict_json import api_router
from forward_test_service.agent_orders import Route
from forward_test_service.agents.schemas import (
    AgentCreate,
    AgentCreated,
    AgentPublic,
    AgentsPublic,
    CommandAck,
    CommandCreate,
    CommandPublic,
    CommandsLeased,
    CommandsPublic,
    CommandState,
    Heartbeat,
    HeartbeatAnswer,
    PositionsPublic,
    SyncReport,
    SystemStatus,
    TradeSync,
)
from forward_test_service.api.deps import AgentReaderDep, AgentWriterDep, ServicesDep
from forward_test_service.services import SessionServices

router = api_router(prefix="/api/agents", tags=["agents"])

POLL_WAIT_MAX = 25  # seconds a long-poll may ask to wait
POLL_LIMIT_MAX = 100
POLL_LIMIT_DEFAULT = 10

AgentId = Annotated[str, Path(pattern=ULID_PATTERN, description="the agent's id")]
CommandId = Annotated[str, Path(pattern=ULID_PATTERN, description="the command's id")]
PROBLEMS: dict[int | str, dict[str, Any]] = {
    status: {"description": text, "content": {PROBLEM_JSON: {}}}
    for status, text in {
        403: "an agent's API key used on another agent, or for a user-only action",
        404: "no such agent (or command) for this user",
        409: "a limit is reached, or the command already ended otherwise",
        422: "invalid request: the problem is named in detail and errors",
        503: "Redis or PostgreSQL is unavailable",
    }.items()
}


@router.post(
    "",
    status_code=201,
    response_model=AgentCreated,
    summary="Register an agent (at the gateway, the answer carries its API key, shown once)",
    responses=PROBLEMS,
)
async def register_agent(
    body: AgentCreate, principal: AgentWriterDep, services: ServicesDep
) -> AgentPublic:
    row = await services.agents.register(principal, body)
    return (await services.agents.public([row]))[0]


@router.get("", response_model=AgentsPublic, summary="Your agents, newest first")
async def list_agents(principal: AgentReaderDep, services: ServicesDep) -> AgentsPublic:
    agents = await services.agents.public(await services.agents.agents(principal))
    return AgentsPublic(data=agents, count=len(agents))


@router.get(
    "/status",
    response_model=SystemStatus,
    summary="Connections, command counts and delivery latency, last syncs",
    responses=PROBLEMS,
)
async def agents_status(principal: AgentReaderDep, services: ServicesDep) -> SystemStatus:
    return await services.agents.status(principal)


@router.get("/{agent_id}", response_model=AgentPublic, responses=PROBLEMS)
async def read_agent(
    agent_id: AgentId, principal: AgentReaderDep, services: ServicesDep
) -> AgentPublic:
    """The agent with its connection state and health score (with its components)."""
    row = await services.agents.agent(principal, agent_id)
    return (await services.agents.public([row]))[0]


@router.delete("/{agent_id}", status_code=204, responses=PROBLEMS)
async def delete_agent(agent_id: AgentId, principal: AgentWriterDep, services: ServicesDep) -> None:
    """Forget the agent and drop its queued commands (its history stays in the database)."""
    await services.agents.delete(principal, agent_id)


@router.post(
    "/{agent_id}/heartbeat",
    response_model=HeartbeatAnswer,
    summary="The agent's heartbeat: account state in, server time and pending commands out",
    responses=PROBLEMS,
)
async def heartbeat(
    agent_id: AgentId, body: Heartbeat, principal: AgentWriterDep, services: ServicesDep
) -> Response:
    # A plain heartbeat, poll or command is answered by the service's agent lane before it
    # gets here (`forward_test_service.api.agent_lane`, with the same `*_answer` function);
    # these routes answer the rest, each problem included, and describe the requests in the
    # OpenAPI document.
    return await heartbeat_answer(services, principal, agent_id, body)


async def heartbeat_answer(
    services: SessionServices, principal: Principal, agent_id: str, body: Heartbeat
) -> Response:
    beat = await services.agents.heartbeat(principal, agent_id, body)
    answer = HeartbeatAnswer(
        server_time_ms=beat.server_time_ms,
        pending_commands=beat.pending_commands,
        state=beat.state,
        heartbeat_seconds=beat.heartbeat_seconds,
    )
    return Response(answer.model_dump_json(), media_type="application/json")


@router.get(
    "/{agent_id}/commands",
    response_model=CommandsLeased,
    summary="Lease the next commands, most urgent first (long-poll with wait)",
    responses=PROBLEMS,
)
async def poll_commands(
    agent_id: AgentId,
    principal: AgentWriterDep,
    services: ServicesDep,
    wait: Annotated[
        float,
        Query(ge=0, le=POLL_WAIT_MAX, description="seconds to wait for a command (long-poll)"),
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=POLL_LIMIT_MAX)] = POLL_LIMIT_DEFAULT,
) -> Response:
    return await poll_answer(services, principal, agent_id, wait, limit)


async def poll_answer(
    services: SessionServices, principal: Principal, agent_id: str, wait: float, limit: int
) -> Response:
    wait = min(wait, services.settings.agent_poll_wait_max_seconds)
    leased = await services.agents.poll(principal, agent_id, wait=wait, limit=limit)
    queue = services.agents.queue
    answer = CommandsLeased(
        data=leased, lease_ms=queue.policy.lease_ms, server_time_ms=queue.now_ms()
    )
    # The answer as it is, on the delivery's path: FastAPI would validate it again first.
    return Response(answer.model_dump_json(), media_type="application/json")


@router.post(
    "/{agent_id}/commands",
    status_code=201,
    response_model=CommandPublic,
    summary="Queue a command for the agent (same idempotency key: the first command)",
    responses={**PROBLEMS, 200: {"description": "the idempotency key was used: that command"}},
)
async def queue_command(
    agent_id: AgentId, body: CommandCreate, principal: AgentWriterDep, services: ServicesDep
) -> Response:
    return await enqueue_answer(services, principal, agent_id, body)


async def enqueue_answer(
    services: SessionServices, principal: Principal, agent_id: str, body: CommandCreate
) -> Response:
    command, created = await services.agents.enqueue(principal, agent_id, body)
    # The command as it is, on the delivery's path: FastAPI would validate it again first.
    return Response(
        command.model_dump_json(),
        status_code=201 if created else 200,
        media_type="application/json",
    )


@router.get("/{agent_id}/commands/{command_id}", response_model=CommandPublic, responses=PROBLEMS)
async def read_command(
    agent_id: AgentId, command_id: CommandId, principal: AgentReaderDep, services: ServicesDep
) -> CommandPublic:
    return await services.agents.command(principal, agent_id, command_id)


@router.get(
    "/{agent_id}/queue",
    response_model=CommandsPublic,
    summary="The agent's commands, newest first, for its owner (read-only: leases nothing)",
    responses=PROBLEMS,
)
async def list_commands(
    agent_id: AgentId,
    principal: AgentReaderDep,
    services: ServicesDep,
    state: Annotated[
        list[CommandState] | None, Query(description="only these states (repeat the parameter)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[
        str | None,
        Query(pattern=r"^[0-9]{1,18}$", description="next_cursor of the previous page"),
    ] = None,
) -> CommandsPublic:
    """Queued, leased and ended commands (ended ones are kept 7 days), each with its payload,
    state, times and result. Unlike the agent's ``GET .../commands`` this never leases, expires
    or puts back a command: a lease that ran out shows ``leased`` until the agent polls. A page
    can hold fewer than ``limit`` commands and still have a ``next_cursor`` (a filter looks at
    1,000 commands per page at most): follow it until it is null."""
    page = await services.agents.commands(
        principal,
        agent_id,
        limit=limit,
        before=int(cursor) if cursor is not None else None,
        states=sorted(set(state or ())),
    )
    return CommandsPublic(
        items=page.commands,
        next_cursor=str(page.next_before) if page.next_before is not None else None,
    )


@router.post(
    "/{agent_id}/commands/{command_id}/ack",
    response_model=CommandPublic,
    summary="Report a command's outcome (the same report twice is harmless)",
    responses=PROBLEMS,
)
async def ack_command(
    agent_id: AgentId,
    command_id: CommandId,
    body: CommandAck,
    principal: AgentWriterDep,
    services: ServicesDep,
) -> CommandPublic:
    command, first = await services.agents.ack(principal, agent_id, command_id, body)
    if first and command.session_id:  # an agent-mode session's order: record what came back
        await services.orders.on_ack(command, Route(principal.user_id, agent_id, ""))
    return command


@router.post(
    "/{agent_id}/trades/sync",
    response_model=SyncReport,
    summary="Reconcile the terminal's open positions with the platform's record",
    responses=PROBLEMS,
)
async def sync_trades(
    agent_id: AgentId, body: TradeSync, principal: AgentWriterDep, services: ServicesDep
) -> Response:
    report = await services.agents.sync(principal, agent_id, body)
    if body.closed:  # agent-mode sessions: positions the terminal closed by itself
        await services.orders.on_sync(agent_id, principal.user_id, body)
    # The report as it is: FastAPI would validate it again against its own model first (a
    # report of 500 adopted positions is 500 items more to check).
    return Response(report.model_dump_json(), media_type="application/json")


@router.get("/{agent_id}/positions", response_model=PositionsPublic, responses=PROBLEMS)
async def read_positions(
    agent_id: AgentId, principal: AgentReaderDep, services: ServicesDep
) -> PositionsPublic:
    """The platform's record of what the agent's account holds."""
    positions = await services.agents.positions(principal, agent_id)
    return PositionsPublic(data=positions, count=len(positions))
