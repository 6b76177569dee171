"""The gateway's domain objects: everything its routes and its proxy lane use, built once per app
in the lifespan (see `main`) and handed to routes as one ``ServicesDep``."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api_gateway.api_keys import ApiKeys
from api_gateway.config import Settings
from api_gateway.credentials import Authenticator
from api_gateway.metrics import GatewayMetrics
from api_gateway.openapi import MergedOpenAPI
from api_gateway.passwords import PasswordHasher
from api_gateway.proxy import Proxy, Upstream
from api_gateway.ratelimit import LoginThrottle, RateLimiter, RedisHealth
from api_gateway.tokens import AccessTokens, InternalTokens, RefreshTokens
from api_gateway.websocket import WebSocketProxy


@dataclass
class Gateway:
    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    passwords: PasswordHasher
    access_tokens: AccessTokens
    refresh_tokens: RefreshTokens
    internal_tokens: InternalTokens
    api_keys: ApiKeys
    authenticator: Authenticator
    limiter: RateLimiter
    login_throttle: LoginThrottle
    redis_health: RedisHealth
    upstreams: dict[str, Upstream]
    proxy: Proxy
    websockets: WebSocketProxy
    openapi: MergedOpenAPI
    metrics: GatewayMetrics
