"""One Lua script, run on one Redis connection with concurrent calls pipelined.

For scripts run once per request on a hot path: the gateway's rate limiter (once per forwarded
request) and the forward-test service's agent heartbeats (a thousand terminals beating at once
would otherwise need a thousand pooled connections). Through redis-py that is a pool
checkout, a retry wrapper, a command packer and a socket write per call, and under load one
connection per concurrent request. Here every call made in the same event-loop turn goes out in
one write on one connection (Redis answers in order), replies are parsed by hiredis, and a call
costs a future. Redis still decides every request: nothing is counted or cached locally.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
from typing import Any

import hiredis
from redis.asyncio import Redis
from redis.asyncio.connection import Connection
from redis.exceptions import ResponseError


def _pack(*args: bytes) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        out.append(b"$%d\r\n%b\r\n" % (len(arg), arg))
    return b"".join(out)


def _encoded(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode()


class _RedisProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.pending: collections.deque[asyncio.Future[Any]] = collections.deque()
        self._reader = hiredis.Reader()
        self.closed = False
        self.outgoing: list[bytes] = []  # commands of this event-loop turn, written together
        self.replies = 0  # replies read so far: progress, for the timeout

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        while (reply := self._reader.gets()) is not False:
            self.replies += 1
            if self.pending:
                future = self.pending.popleft()
                if not future.done():
                    future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        while self.pending:
            future = self.pending.popleft()
            if not future.done():
                future.set_exception(ConnectionError(f"redis connection lost: {exc or 'EOF'}"))

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class PipelinedScript:
    """``await script(keys, args)``: EVALSHA of ``source``, EVAL the first time Redis lacks it.

    Raises `ConnectionError` or `TimeoutError` when Redis cannot be reached or does not answer
    within ``timeout`` (the connection is then dropped and made again on the next call), and
    redis-py's `ResponseError` for an error reply.
    """

    def __init__(
        self,
        source: str,
        *,
        host: str,
        port: int,
        db: int = 0,
        username: str | None = None,
        password: str | None = None,
        timeout: float,
        connect_timeout: float,
    ) -> None:
        self._source = source.encode()
        self._sha = hashlib.sha1(self._source, usedforsecurity=False).hexdigest().encode()
        self._host, self._port = host, port
        self._setup: list[bytes] = []
        if password is not None:
            auth = (username.encode(),) if username else ()
            self._setup.append(_pack(b"AUTH", *auth, password.encode()))
        if db:
            self._setup.append(_pack(b"SELECT", str(db).encode()))
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._protocol: _RedisProtocol | None = None
        self._connecting: asyncio.Lock | None = None

    @classmethod
    def for_client(cls, redis: Redis, source: str, *, timeout: float) -> PipelinedScript | None:
        """The script on the same server as ``redis``; None unless that is plain TCP (a Unix
        socket or TLS connection stays with redis-py)."""
        pool = redis.connection_pool
        if pool.connection_class is not Connection:
            return None
        kwargs = pool.connection_kwargs
        return cls(
            source,
            host=kwargs.get("host", "localhost"),
            port=int(kwargs.get("port", 6379)),
            db=int(kwargs.get("db", 0) or 0),
            username=kwargs.get("username"),
            password=kwargs.get("password"),
            timeout=kwargs.get("socket_timeout") or timeout,
            connect_timeout=kwargs.get("socket_connect_timeout") or timeout,
        )

    async def __call__(self, keys: list[str], args: list[Any]) -> Any:
        numbers = [_encoded(a) for a in args]
        encoded_keys = [_encoded(k) for k in keys]
        count = str(len(keys)).encode()
        reply = await self._call(_pack(b"EVALSHA", self._sha, count, *encoded_keys, *numbers))
        if isinstance(reply, hiredis.ReplyError) and str(reply).startswith("NOSCRIPT"):
            reply = await self._call(_pack(b"EVAL", self._source, count, *encoded_keys, *numbers))
        if isinstance(reply, hiredis.ReplyError):
            raise ResponseError(str(reply))
        return reply

    async def _call(self, command: bytes) -> Any:
        protocol = self._protocol
        if protocol is None or protocol.closed:
            protocol = await self._connect()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        protocol.pending.append(future)
        if not protocol.outgoing:
            loop.call_soon(self._flush, protocol)
        protocol.outgoing.append(command)
        timer = loop.call_later(self._timeout, self._time_out, future, protocol, protocol.replies)
        try:
            return await future
        finally:
            timer.cancel()

    @staticmethod
    def _flush(protocol: _RedisProtocol) -> None:
        data, protocol.outgoing = b"".join(protocol.outgoing), []
        if protocol.transport is not None and not protocol.closed:
            protocol.transport.write(data)

    def _time_out(
        self, future: asyncio.Future[Any], protocol: _RedisProtocol, replies_then: int
    ) -> None:
        """No answer in time. If other replies arrived meanwhile, Redis is answering and the
        wait was the event loop's (a burst of requests in this process): wait once more.
        Otherwise Redis is stuck or gone: fail the call and drop the connection."""
        if future.done():
            return
        if protocol.replies > replies_then and not protocol.closed:
            loop = asyncio.get_running_loop()
            timer = loop.call_later(
                self._timeout, self._time_out, future, protocol, protocol.replies
            )
            future.add_done_callback(lambda _: timer.cancel())
            return
        future.set_exception(TimeoutError(f"redis did not answer within {self._timeout}s"))
        # Replies come in order: one that never came leaves the connection unusable.
        protocol.close()

    async def _connect(self) -> _RedisProtocol:
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._protocol is not None and not self._protocol.closed:
                return self._protocol
            loop = asyncio.get_running_loop()
            async with asyncio.timeout(self._connect_timeout):
                _, protocol = await loop.create_connection(_RedisProtocol, self._host, self._port)
            self._protocol = protocol
            for command in self._setup:  # AUTH, SELECT: before any script call goes out
                reply = await self._call(command)
                if isinstance(reply, hiredis.ReplyError):
                    protocol.close()
                    raise ResponseError(str(reply))
            return protocol

    async def connect(self) -> None:
        """Connect now (at startup) rather than on the first call, which may come in a burst
        that keeps the event loop too busy to connect within the timeout."""
        await self._connect()

    async def aclose(self) -> None:
        if self._protocol is not None:
            self._protocol.close()
            self._protocol = None
