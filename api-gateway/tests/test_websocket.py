"""WebSocket pass-through to the notification service, over real sockets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from algotrade_testkit.stalled import StalledClient

pytestmark = pytest.mark.timeout(60)


def _ws(url: str) -> str:
    return url.replace("http://", "ws://") + "/ws"


async def test_token_in_query_authenticates_and_messages_flow_both_ways(
    serve_gateway: Callable[..., Any], issue_token: Callable[..., str]
) -> None:
    token = issue_token(user_id="alice")
    async with (
        serve_gateway() as url,
        websockets.connect(f"{_ws(url)}?token={token}&topics=bars") as ws,
    ):
        hello = json.loads(await ws.recv())
        # The service saw the gateway's internal token for alice, and not her token.
        assert hello["principal"]["user_id"] == "alice"
        assert hello["query"] == "topics=bars"
        await ws.send("ping")
        assert await ws.recv() == "echo:ping"
        await ws.send("close-me")
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 4000  # the service's close code, passed through


async def test_a_credential_subprotocol_authenticates_and_goes_no_further(
    serve_gateway: Callable[..., Any], issue_token: Callable[..., str]
) -> None:
    token = issue_token(user_id="carol")
    offered = ["algotrade.v1", f"bearer.{token}"]
    async with (
        serve_gateway() as url,
        websockets.connect(_ws(url), subprotocols=offered) as ws,  # type: ignore[arg-type]
    ):
        hello = json.loads(await ws.recv())
        assert hello["principal"]["user_id"] == "carol"
        # The service was offered the real subprotocol only; the credential stopped here.
        assert hello["subprotocols"] == ["algotrade.v1"]
        assert not (ws.subprotocol or "").startswith("bearer.")
    async with serve_gateway() as url:
        with pytest.raises(InvalidStatus) as refused:
            async with websockets.connect(
                _ws(url),
                subprotocols=["algotrade.v1", "bearer.garbage"],  # type: ignore[list-item]
            ):
                pass
        assert refused.value.response.status_code == 401


async def test_first_message_authenticates(
    serve_gateway: Callable[..., Any], issue_token: Callable[..., str]
) -> None:
    async with serve_gateway() as url, websockets.connect(_ws(url)) as ws:
        await ws.send(json.dumps({"type": "auth", "token": issue_token(user_id="bob")}))
        hello = json.loads(await ws.recv())
        assert hello["principal"]["user_id"] == "bob"
        await ws.send("hi")
        assert await ws.recv() == "echo:hi"


async def test_bad_credentials_are_refused(
    serve_gateway: Callable[..., Any], issue_token: Callable[..., str]
) -> None:
    async with serve_gateway(websocket_auth_timeout_seconds=0.5) as url:
        with pytest.raises(InvalidStatus) as refused:
            async with websockets.connect(f"{_ws(url)}?token=garbage"):
                pass
        assert refused.value.response.status_code == 401
        assert json.loads(refused.value.response.body)["code"] == "unauthorized"

        narrow = issue_token(scopes=frozenset({"market:read"}))
        with pytest.raises(InvalidStatus) as forbidden:
            async with websockets.connect(f"{_ws(url)}?token={narrow}"):
                pass
        assert forbidden.value.response.status_code == 403

        async with websockets.connect(_ws(url)) as ws:
            await ws.send(json.dumps({"type": "subscribe"}))
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert ws.close_code == 1008

        async with websockets.connect(_ws(url)) as ws:  # says nothing: timed out
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert ws.close_code == 1008


async def test_unreachable_notification_service_is_refused(
    serve_gateway: Callable[..., Any], issue_token: Callable[..., str], dead_url: str
) -> None:
    async with serve_gateway(notification_service_url=dead_url) as url:
        with pytest.raises(InvalidStatus) as refused:
            async with websockets.connect(f"{_ws(url)}?token={issue_token()}"):
                pass
        assert refused.value.response.status_code == 503


async def test_a_client_that_stops_reading_is_closed_as_too_slow_and_frees_the_relay(
    serve_gateway: Callable[..., Any], issue_token: Callable[..., str]
) -> None:
    token = issue_token(user_id="dave")
    async with serve_gateway(websocket_send_timeout_seconds=1.0) as url:
        port = int(url.rsplit(":", 1)[1])
        # 30 MB asked for, far more than the socket buffers on the way hold.
        slow = await StalledClient.open(port, f"/ws?token={token}", {}, say=("flood:3000:10000",))
        await asyncio.sleep(3)  # well past the gateway's patience
        close = await asyncio.wait_for(slow.read_to_close(), timeout=30)
        assert close is not None and close.code == 4008 and "too slow" in close.reason
        assert len(slow.texts) < 3000  # cut off, not served in full
        # The gateway goes on serving others.
        async with websockets.connect(f"{_ws(url)}?token={token}") as ws:
            assert json.loads(await ws.recv())["principal"]["user_id"] == "dave"
            await ws.send("still here?")
            assert await ws.recv() == "echo:still here?"
