"""Live events over a local WebSocket server that speaks the notification protocol: the
credential goes in the ``bearer.`` subprotocol next to ``algotrade.v1``, each channel is
subscribed, a dropped connection is reopened and resumed from the last number seen, a normal
close ends the iteration, and refusals become ApiErrors."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from websockets.datastructures import Headers
from websockets.http11 import Response
from websockets.sync.server import Server, ServerConnection, serve

from algotrade_client import AsyncClient, Client, Forbidden, Unauthorized
from algotrade_client.subscribe import Subscription, websocket_url

CHANNEL = "session:01J00000000000000000000000"
TOKEN = "A1-token"


@dataclass
class Notifier:
    """Per connection: welcome, then for each subscribe ``subscribed`` + a snapshot (seq 10)
    and events; what each connection does after that is ``script[n]``."""

    script: list[Callable[[ServerConnection, dict[str, Any]], None]]
    offered: list[str] = field(default_factory=list)
    subscribes: list[dict[str, Any]] = field(default_factory=list)

    def handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        self.offered.append(ws.request.headers["Sec-WebSocket-Protocol"])
        ws.send(json.dumps({"type": "welcome", "user_id": "u1"}))
        frame = json.loads(ws.recv(timeout=5))
        self.subscribes.append(frame)
        self.script[len(self.subscribes) - 1](ws, frame)


def send(ws: ServerConnection, **message: Any) -> None:
    ws.send(json.dumps(message))


def event(ws: ServerConnection, seq: int) -> None:
    send(ws, type="event", channel=CHANNEL, seq=seq, event={"type": "session.equity"})


def first_connection_drops(ws: ServerConnection, frame: dict[str, Any]) -> None:
    send(ws, type="subscribed", channel=CHANNEL, seq=10)
    send(ws, type="snapshot", snapshot=True, channel=CHANNEL, seq=10, data={"status": "running"})
    event(ws, 11)
    event(ws, 12)
    ws.close(4008, "too slow")  # the server's close for a slow reader: reconnect and resume


def resumed_then_closed(ws: ServerConnection, frame: dict[str, Any]) -> None:
    send(ws, type="subscribed", channel=CHANNEL, seq=12)
    event(ws, 13)
    ws.close(1000, "done")


@pytest.fixture
def notifier() -> Iterator[Callable[..., tuple[Notifier, str]]]:
    servers: list[tuple[Server, threading.Thread]] = []

    def start(
        *script: Callable[[ServerConnection, dict[str, Any]], None],
        process_request: Any = None,
    ) -> tuple[Notifier, str]:
        fake = Notifier(list(script))
        server = serve(
            fake.handle,
            "127.0.0.1",
            0,
            subprotocols=["algotrade.v1"],  # type: ignore[list-item]
            process_request=process_request,
        )
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        servers.append((server, thread))
        port = server.socket.getsockname()[1]
        return fake, f"http://127.0.0.1:{port}"

    yield start
    for server, thread in servers:
        server.shutdown()
        thread.join(5)


def test_the_websocket_url_follows_the_base_url() -> None:
    assert websocket_url("http://127.0.0.1:8000") == "ws://127.0.0.1:8000/ws"
    assert websocket_url("https://algo.example/api-root/") == "wss://algo.example/api-root/ws"


def test_a_dropped_subscription_is_resumed_from_the_last_number_seen(
    notifier: Callable[..., tuple[Notifier, str]],
) -> None:
    fake, url = notifier(first_connection_drops, resumed_then_closed)
    with Client(url, token=TOKEN) as client:
        messages = list(client.subscribe([CHANNEL]))
    kinds = [(m["type"], m.get("seq")) for m in messages]
    assert kinds == [
        ("welcome", None),
        ("subscribed", 10),
        ("snapshot", 10),
        ("event", 11),
        ("event", 12),
        ("welcome", None),
        ("subscribed", 12),
        ("event", 13),
    ]
    assert fake.offered == [f"algotrade.v1, bearer.{TOKEN}"] * 2
    assert fake.subscribes == [
        {"type": "subscribe", "channel": CHANNEL},
        {"type": "subscribe", "channel": CHANNEL, "resume_from": 12},
    ]


async def test_the_async_subscription_resumes_from_what_the_caller_saw(
    notifier: Callable[..., tuple[Notifier, str]],
) -> None:
    fake, url = notifier(resumed_then_closed)
    async with AsyncClient(url, token=TOKEN) as client:
        messages = [m async for m in client.subscribe([CHANNEL], resume={CHANNEL: 12})]
    assert [m["type"] for m in messages] == ["welcome", "subscribed", "event"]
    assert fake.subscribes == [{"type": "subscribe", "channel": CHANNEL, "resume_from": 12}]


async def test_the_async_subscription_resumes_after_a_drop(
    notifier: Callable[..., tuple[Notifier, str]],
) -> None:
    fake, url = notifier(first_connection_drops, resumed_then_closed)
    async with AsyncClient(url, token=TOKEN) as client:
        seqs = [m.get("seq") async for m in client.subscribe([CHANNEL]) if m["type"] == "event"]
    assert seqs == [11, 12, 13]
    assert fake.subscribes[-1] == {"type": "subscribe", "channel": CHANNEL, "resume_from": 12}


def test_leaving_the_loop_closes_the_socket(
    notifier: Callable[..., tuple[Notifier, str]],
) -> None:
    closed = threading.Event()

    def stays_open(ws: ServerConnection, frame: dict[str, Any]) -> None:
        send(ws, type="subscribed", channel=CHANNEL, seq=1)
        for _ in ws:  # until the client closes
            pass
        closed.set()

    _, url = notifier(stays_open)
    with Client(url, token=TOKEN) as client:
        for message in client.subscribe([CHANNEL]):
            if message["type"] == "subscribed":
                break
    assert closed.wait(5)


def test_a_policy_close_is_unauthorized(notifier: Callable[..., tuple[Notifier, str]]) -> None:
    def policy(ws: ServerConnection, frame: dict[str, Any]) -> None:
        ws.close(1008, "the API key was revoked")

    _, url = notifier(policy)
    with Client(url, api_key="atk_x") as client, pytest.raises(Unauthorized, match="revoked"):
        list(client.subscribe([CHANNEL]))


def test_a_refused_handshake_raises_the_problem(
    notifier: Callable[..., tuple[Notifier, str]],
) -> None:
    def refuse(connection: ServerConnection, request: Any) -> Response:
        body = json.dumps(
            {"title": "Forbidden", "status": 403, "detail": "lacks notifications:read"}
        ).encode()
        headers = Headers({"Content-Type": "application/problem+json"})
        return Response(403, "Forbidden", headers, body)

    _, url = notifier(process_request=refuse)
    with (
        Client(url, api_key="atk_x") as client,
        pytest.raises(Forbidden, match="lacks notifications:read"),
    ):
        next(iter(client.subscribe([CHANNEL])))


def test_a_reconnection_refused_with_a_503_is_tried_again(
    notifier: Callable[..., tuple[Notifier, str]],
) -> None:
    connections = 0

    def restarting(connection: ServerConnection, request: Any) -> Response | None:
        nonlocal connections
        connections += 1
        if connections != 2:
            return None
        body = json.dumps({"title": "Service unavailable", "status": 503, "detail": "breaker"})
        return Response(503, "Service Unavailable", Headers(), body.encode())

    fake, url = notifier(first_connection_drops, resumed_then_closed, process_request=restarting)
    with Client(url, token=TOKEN) as client:
        messages = list(client.subscribe([CHANNEL]))
    assert connections == 3 and messages[-1]["seq"] == 13
    assert fake.subscribes[-1] == {"type": "subscribe", "channel": CHANNEL, "resume_from": 12}


def test_the_protocol_state_tracks_numbers_and_gives_up_after_its_attempts() -> None:
    state = Subscription(["a", "b", "a"], {"b": 7}, attempts=2)
    assert [json.loads(f) for f in state.opening()] == [
        {"type": "subscribe", "channel": "a"},
        {"type": "subscribe", "channel": "b", "resume_from": 7},
    ]
    state.connected()
    state.receive(json.dumps({"type": "event", "channel": "a", "seq": 5}))
    state.receive(json.dumps({"type": "gap", "channel": "b", "from": 8, "to": 20}))
    assert state.last_seen == {"a": 5, "b": 20}
    assert state.closed(1000, "") is None
    assert 0.4 <= (state.closed(1006, "") or 0) <= 0.6
    state.closed(1013, "")
    with pytest.raises(Exception, match="gave up after 2 attempts"):
        state.closed(1006, "")
