"""The agent lane (`forward_test_service.api.agent_lane`): a plain heartbeat, command or poll is
answered before FastAPI's layers with the route's answer, through the app's middleware;
anything else is the route's, problems included."""

from __future__ import annotations

from typing import Any

import orjson

from forward_test_service.api.agent_lane import BODY_MAX_BYTES, AgentLane, _poll_query

from .conftest import Desk

BEAT = {"balance": 10_000.0, "equity": 10_012.5, "open_positions": 1}


async def test_a_heartbeat_is_answered_alike_in_the_lane_and_on_the_route(desk: Desk) -> None:
    agent = await desk.register()
    url = f"/api/agents/{agent}/heartbeat"
    body = orjson.dumps(BEAT)
    answers = []
    # application/json: the lane's; a +json media type: FastAPI reads it as JSON, the lane
    # leaves it to the route.
    for media in ("application/json", "application/vnd.heartbeat+json"):
        answer = await desk.client.post(
            url, content=body, headers={**desk.agent(agent), "Content-Type": media}
        )
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "application/json"
        assert answer.headers["x-request-id"]  # the platform middleware ran
        answers.append(answer.json())
    lane, route = answers
    assert (
        list(lane)
        == list(route)
        == [
            "server_time_ms",
            "heartbeat_seconds",
            "pending_commands",
            "state",
        ]
    )
    assert {k: v for k, v in lane.items() if k != "server_time_ms"} == {
        "heartbeat_seconds": 5.0,
        "pending_commands": 0,
        "state": "healthy",
    }
    assert {k: v for k, v in route.items() if k != "server_time_ms"} == {
        "heartbeat_seconds": 5.0,
        "pending_commands": 0,
        "state": "healthy",
    }
    connection = (await desk.client.get(f"/api/agents/{agent}", headers=desk.user())).json()
    assert connection["connection"]["heartbeats"] == 2
    assert connection["connection"]["account"]["equity"] == 10_012.5


def counted(metrics: str, method: str, route: str, status: int) -> float:
    lines = [
        line
        for line in metrics.splitlines()
        if line.startswith("http_requests_total{")
        and f'method="{method}"' in line
        and f'route="{route}"' in line
        and f'status="{status}"' in line
    ]
    assert len(lines) == 1, lines
    return float(lines[0].rsplit(" ", 1)[1])


async def test_requests_in_the_lane_are_counted_under_their_route(desk: Desk) -> None:
    agent = await desk.register()
    for i in range(3):
        assert (await desk.heartbeat(agent)).status_code == 200
        assert (await desk.enqueue(agent, kind="info", message=f"m{i}")).status_code == 201
        assert len(await desk.poll(agent, limit=1)) == 1
    metrics = (await desk.client.get("/metrics")).text
    assert counted(metrics, "POST", "/api/agents/{agent_id}/heartbeat", 200) == 3
    assert counted(metrics, "POST", "/api/agents/{agent_id}/commands", 201) == 3
    assert counted(metrics, "GET", "/api/agents/{agent_id}/commands", 200) == 3


async def test_a_command_and_its_poll_are_answered_alike_in_the_lane_and_on_the_route(
    desk: Desk,
) -> None:
    agent = await desk.register()
    url = f"/api/agents/{agent}/commands"
    created = []
    # application/json: the lane's; a +json media type: FastAPI reads it as JSON, the lane
    # leaves it to the route.
    for i, media in enumerate(("application/json", "application/vnd.command+json")):
        body = orjson.dumps({"kind": "close", "ticket": f"T{i}", "idempotency_key": f"k{i}"})
        answer = await desk.client.post(
            url, content=body, headers={**desk.user(), "Content-Type": media}
        )
        assert answer.status_code == 201, answer.text
        assert answer.headers["content-type"] == "application/json"
        assert answer.headers["x-request-id"]
        created.append(answer.json())
    lane, route = created
    assert list(lane) == list(route)
    assert lane["kind"] == route["kind"] == "close"
    assert (lane["ticket"], route["ticket"]) == ("T0", "T1")
    # The same key again answers the first command, with 200, both ways.
    again = await desk.client.post(
        url,
        content=orjson.dumps({"kind": "close", "ticket": "T0", "idempotency_key": "k0"}),
        headers={**desk.user(), "Content-Type": "application/json"},
    )
    assert again.status_code == 200
    assert again.json()["id"] == lane["id"]

    # ?limit=1 is the lane's; ?limit=+1 (a sign) the route's, which reads it the same.
    polled = []
    for limit in ("1", "+1"):
        answer = await desk.client.get(
            url, params={"limit": limit, "wait": "0"}, headers=desk.agent(agent)
        )
        assert answer.status_code == 200, answer.text
        assert answer.headers["x-request-id"]
        polled.append(answer.json())
    first, second = polled
    assert list(first) == list(second) == ["data", "lease_ms", "server_time_ms"]
    assert [c["id"] for c in first["data"]] == [lane["id"]]
    assert [c["id"] for c in second["data"]] == [route["id"]]
    assert first["data"][0]["state"] == second["data"][0]["state"] == "leased"


async def test_what_the_lane_leaves_of_commands_and_polls_is_answered_by_the_route(
    desk: Desk,
) -> None:
    agent = await desk.register()
    other = await desk.register()
    url = f"/api/agents/{agent}/commands"
    json = {**desk.user(), "Content-Type": "application/json"}
    invalid = await desk.client.post(url, json={"kind": "open", "symbol": "EURUSD"}, headers=json)
    assert invalid.status_code == 422
    loose = await desk.client.post(
        url, json={"kind": "info", "message": "m", "expires_in_seconds": "60"}, headers=json
    )
    assert loose.status_code == 422  # strict: no string for a number
    assert [e["loc"] for e in loose.json()["errors"]] == [["body", "expires_in_seconds"]]
    # An agent's key queues nothing (the desk's answer, given in the lane).
    by_agent = await desk.client.post(
        url, json={"kind": "info", "message": "m"}, headers=desk.agent(agent)
    )
    assert by_agent.status_code == 403
    assert by_agent.headers["content-type"] == "application/problem+json"
    assert by_agent.headers["x-request-id"] == by_agent.json()["request_id"]
    for params in ({"wait": "26"}, {"wait": "-1"}, {"limit": "0"}, {"limit": "101"}):
        refused = await desk.client.get(url, params=params, headers=desk.agent(agent))
        assert refused.status_code == 422, params
        assert refused.headers["content-type"] == "application/problem+json"
    elsewhere = await desk.client.get(
        f"/api/agents/{other}/commands", params={"wait": "0"}, headers=desk.agent(agent)
    )
    assert elsewhere.status_code == 403
    unsigned = await desk.client.get(url, headers={"Authorization": "Bearer nope"})
    assert unsigned.status_code == 401
    assert (await desk.client.get(url, params={"wait": "0"}, headers=desk.agent(agent))).json()[
        "data"
    ] == []  # nothing was queued by any of it


async def test_what_the_lane_leaves_is_answered_by_the_route(desk: Desk) -> None:
    agent = await desk.register()
    other = await desk.register()
    url = f"/api/agents/{agent}/heartbeat"
    headers = {**desk.agent(agent), "Content-Type": "application/json"}
    malformed = await desk.client.post(url, content=b'{"balance": 1,', headers=headers)
    assert malformed.status_code == 400
    assert malformed.json()["code"] == "malformed_json"
    nul = await desk.client.post(
        url, content=b'{"balance": 1, "equity": "\\u0000"}', headers=headers
    )
    assert nul.status_code == 400
    invalid = await desk.client.post(url, json={"balance": "lots", "equity": 1}, headers=headers)
    assert invalid.status_code == 422
    assert [e["loc"] for e in invalid.json()["errors"]] == [["body", "balance"]]
    unsigned = await desk.client.post(url, json=BEAT, headers={"Authorization": "Bearer nope"})
    assert unsigned.status_code == 401
    assert unsigned.headers["content-type"] == "application/problem+json"
    # Its answer is the desk's, given in the lane: another agent's key is refused.
    elsewhere = await desk.client.post(
        f"/api/agents/{other}/heartbeat", json=BEAT, headers=desk.agent(agent)
    )
    assert elsewhere.status_code == 403
    assert elsewhere.headers["content-type"] == "application/problem+json"
    assert elsewhere.headers["x-request-id"] == elsewhere.json()["request_id"]
    unknown = await desk.client.post(
        "/api/agents/01J0000000000000000000000A/heartbeat", json=BEAT, headers=desk.user()
    )
    assert unknown.status_code == 404


def scope(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "headers": headers}


def test_the_lane_claims_the_three_requests_in_their_plain_form_only() -> None:
    agent = "01J0000000000000000000000A"
    small = [(b"content-length", b"120")]
    for method, tail in (("POST", "heartbeat"), ("POST", "commands"), ("GET", "commands")):
        headers = [] if method == "GET" else small
        assert AgentLane.claims(scope(method, f"/api/agents/{agent}/{tail}", headers))
    large = [(b"content-length", str(BODY_MAX_BYTES + 1).encode())]
    chunked = [(b"transfer-encoding", b"chunked")]
    for method, tail, headers in (
        ("POST", "commands", large),
        ("POST", "commands", chunked),
        ("POST", "commands", []),  # no declared length
        ("GET", "commands", small),  # a GET with a body
        ("POST", "commands/x/ack", small),
        ("PUT", "commands", small),
        ("GET", "heartbeat", []),
    ):
        assert not AgentLane.claims(scope(method, f"/api/agents/{agent}/{tail}", headers))
    assert not AgentLane.claims(scope("GET", "/api/agents/not-an-id/commands", []))


def test_a_poll_query_is_the_lane_s_only_when_plain() -> None:
    assert _poll_query(b"") == (0.0, 10)
    assert _poll_query(b"wait=25&limit=100") == (25.0, 100)
    assert _poll_query(b"limit=1&wait=2.5") == (2.5, 1)
    for query in (
        b"wait=25.001",
        b"wait=1e1",
        b"wait=nan",
        b"wait=-1",
        b"wait=+1",
        b"wait=",
        b"limit=0",
        b"limit=101",
        b"limit=1.0",
        b"wait=1&wait=2",
        b"other=1",
        b"wait",
        b"wait=1%00",
        b"\xff=1",
    ):
        assert _poll_query(query) is None, query
