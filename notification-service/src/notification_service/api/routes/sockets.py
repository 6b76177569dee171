"""``/ws``: the WebSocket clients reach through the gateway (`notification_service.subscriber`)."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from notification_service.services import Notifications
from notification_service.subscriber import serve

router = APIRouter()


@router.websocket("/ws")
async def websocket(websocket: WebSocket) -> None:
    services = getattr(websocket.app.state, "services", None)
    if not isinstance(services, Notifications):
        await websocket.close(code=1013, reason="starting; retry")
        return
    await serve(websocket, services)
