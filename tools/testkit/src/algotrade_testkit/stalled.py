"""A WebSocket peer that stops reading: the slow client of backpressure tests.

websockets' sans-I/O client protocol over a raw socket with a 4 KB receive buffer (set before
connecting, so the window is agreed small): once it has said what it has to say, it reads
nothing at all until asked to read to the end, so the server's writes really block. A client
library would keep reading into its own buffers.
"""

from __future__ import annotations

import asyncio
import socket

from websockets.client import ClientProtocol
from websockets.frames import Close, Frame, Opcode
from websockets.uri import parse_uri


class StalledClient:
    def __init__(self, sock: socket.socket, protocol: ClientProtocol) -> None:
        self.sock, self.protocol = sock, protocol
        self.texts: list[bytes] = []

    @classmethod
    async def open(
        cls, port: int, path: str, headers: dict[str, str], *, say: tuple[str, ...] = ()
    ) -> StalledClient:
        """Connect to ``ws://127.0.0.1:<port><path>``, send the ``say`` messages, then stall."""
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", port))
        protocol = ClientProtocol(parse_uri(f"ws://127.0.0.1:{port}{path}"))
        request = protocol.connect()
        for name, value in headers.items():
            request.headers[name] = value
        protocol.send_request(request)
        client = cls(sock, protocol)
        await client._flush()
        while protocol.handshake_exc is None and protocol.state.name == "CONNECTING":
            protocol.receive_data(await loop.sock_recv(sock, 4096))
        if protocol.handshake_exc is not None:
            raise protocol.handshake_exc
        for message in say:
            protocol.send_text(message.encode())
        await client._flush()
        return client

    async def _flush(self) -> None:
        for chunk in self.protocol.data_to_send():
            if chunk:
                await asyncio.get_running_loop().sock_sendall(self.sock, chunk)

    async def read_to_close(self) -> Close | None:
        """Read everything sent until the server's close (texts kept in ``texts``); its
        close frame, or None when the connection just ended."""
        loop = asyncio.get_running_loop()
        while self.protocol.close_rcvd is None:
            data = await loop.sock_recv(self.sock, 1 << 16)
            if not data:
                break
            self.protocol.receive_data(data)
            for event in self.protocol.events_received():
                if isinstance(event, Frame) and event.opcode == Opcode.TEXT:
                    self.texts.append(bytes(event.data))
        self.sock.close()
        return self.protocol.close_rcvd
