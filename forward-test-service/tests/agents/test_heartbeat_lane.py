"""The heartbeat lane (`forward_test_service.api.heartbeat_lane`): a plain heartbeat is answered
before FastAPI's layers with the route's answer, through the app's middleware; anything else is
the route's, problems included."""

from __future__ import annotations

import orjson

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


async def test_heartbeats_in_the_lane_are_counted_under_their_route(desk: Desk) -> None:
    agent = await desk.register()
    for _ in range(3):
        assert (await desk.heartbeat(agent)).status_code == 200
    metrics = (await desk.client.get("/metrics")).text
    counted = [
        line
        for line in metrics.splitlines()
        if line.startswith("http_requests_total{")
        and 'route="/api/agents/{agent_id}/heartbeat"' in line
        and 'status="200"' in line
    ]
    assert len(counted) == 1
    assert float(counted[0].rsplit(" ", 1)[1]) == 3


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
