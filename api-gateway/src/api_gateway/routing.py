"""The route table: which service answers which path, and how each request is classed.

A path belongs to a rule when it equals the rule's prefix or continues it after a ``/``
(``/api/strategies`` and ``/api/strategies/42``, not ``/api/strategiesX``). The path is
forwarded unchanged: services serve their resources under the same ``/api/...`` paths.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from api_gateway.config import RouteClass
from api_gateway.scopes import SAFE_METHODS


@dataclass(frozen=True)
class RouteRule:
    prefix: str
    upstream: str  # a key of `Settings.upstream_urls`
    resource: str  # the scope resource: "<resource>:read" / "<resource>:write"
    post_class: RouteClass = "write"  # rate-limit class of POST requests

    def route_class(self, method: str) -> RouteClass:
        if method in SAFE_METHODS:
            return "read"
        return self.post_class if method == "POST" else "write"

    def required_scope(self, method: str) -> str:
        return f"{self.resource}:{'read' if method in SAFE_METHODS else 'write'}"


ROUTE_TABLE: tuple[RouteRule, ...] = (
    RouteRule("/api/strategies", "strategy-service", "strategies"),
    RouteRule("/api/market", "market-data-service", "market"),
    RouteRule("/api/backtests", "backtesting-service", "backtests", post_class="backtest_submit"),
    RouteRule("/api/sessions", "forward-test-service", "sessions"),
    RouteRule("/api/agents", "forward-test-service", "agents"),
    RouteRule("/api/analytics", "analytics-service", "analytics"),
    RouteRule("/api/notifications", "notification-service", "notifications"),
)

WEBSOCKET_RULE = RouteRule("/ws", "notification-service", "notifications")


class RouteTable:
    """Resolves ``/api/<resource>/...`` paths with one dictionary lookup."""

    def __init__(self, rules: tuple[RouteRule, ...] = ROUTE_TABLE) -> None:
        self.rules = rules
        self._by_segment: dict[str, RouteRule] = {}
        for rule in rules:
            _, api, segment = rule.prefix.split("/")
            if api != "api":
                raise ValueError(f"routed prefixes live under /api: {rule.prefix}")
            self._by_segment[segment] = rule

    def resolve(self, path: str) -> RouteRule | None:
        parts = path.split("/", 3)  # "", "api", "<segment>", rest
        if len(parts) < 3 or parts[0] or parts[1] != "api":
            return None
        return self._by_segment.get(parts[2])

    def owns(self, upstream: str, path: str) -> bool:
        """Whether ``path`` at the gateway reaches ``upstream`` (for the merged OpenAPI)."""
        rule = self.resolve(path)
        return rule is not None and rule.upstream == upstream


AGENTS_PATH = "/api/agents"
AGENT_KEYS_PATH = re.compile(r"^/api/agents/[0-7][0-9A-HJKMNP-TV-Z]{25}/keys$")


def gateway_owned(method: str, path: str) -> bool:
    """Routed paths the gateway answers itself: registering an agent and minting its key
    (`api_gateway.api.routes.agents` composes the forward-test service's agent with a key)."""
    return method == "POST" and (path == AGENTS_PATH or AGENT_KEYS_PATH.match(path) is not None)


def has_dot_segments(path: str) -> bool:
    """``.`` or ``..`` segments: never forwarded, an upstream must not have to normalise them."""
    if "." not in path:  # most paths: no segment to look at
        return False
    return any(segment in (".", "..") for segment in path.split("/"))
