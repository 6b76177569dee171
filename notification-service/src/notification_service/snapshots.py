"""A subscribed resource's current state, asked of the service that owns it, as the subscriber.

Subscribing reads the resource the way the subscriber's REST call would (the same endpoint, an
internal token for the subscriber from the notification signer, which holds read scopes only),
so the owning service decides who may see what: its 404 refuses the channel as not found, its
403 as forbidden. The answer is the ``snapshot`` message, and the parity checker compares shadow
pushes with it. No table of another service is ever read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from algotrade.auth import InternalTokens, Principal
from algotrade.errors import DependencyUnavailable, Forbidden, NotFound
from notification_service.channels import Channel
from notification_service.config import Settings

SCOPES: dict[str, tuple[str, ...]] = {
    "session": ("sessions:read",),
    "backtest": ("backtests:read",),
    "sweep": ("backtests:read",),
    "agent": ("agents:read",),
    "market": ("market:read",),
    "user": ("sessions:read", "backtests:read", "agents:read"),
}
"""What a subscriber's credential must hold for each kind of channel."""
AGENT_BINDING = "agent:"  # an agent's own API key holds ``agent:<id>`` and sees that agent only


@dataclass(frozen=True)
class Snapshot:
    data: dict[str, Any] | None  # None: the channel has no single resource (``user``)
    owner: str | None = None  # a market channel: whose series the reads resolve to


def check_access(principal: Principal, channel: Channel) -> None:
    """Refuse a channel the credential's scopes do not cover (before any call is made)."""
    for scope in SCOPES[channel.kind]:
        principal.require_scope(scope)
    bindings = {s[len(AGENT_BINDING) :] for s in principal.scopes if s.startswith(AGENT_BINDING)}
    own_agent = channel.kind == "agent" and channel.resource_id in bindings
    if bindings and channel.kind != "market" and not own_agent:
        raise Forbidden("an agent's key subscribes to its own agent and to market channels only")


class ResourceReader:
    def __init__(
        self, client: httpx.AsyncClient, settings: Settings, tokens: InternalTokens
    ) -> None:
        self._client = client
        self._tokens = tokens
        self._forward = settings.forward_test_service_url.rstrip("/")
        self._backtesting = settings.backtesting_service_url.rstrip("/")
        self._market = settings.market_data_service_url.rstrip("/")

    def url(self, channel: Channel) -> tuple[str, dict[str, str]]:
        """Where the REST state of ``channel``'s resource is read."""
        rid = quote(channel.resource_id or "", safe="")
        if channel.kind == "session":
            return f"{self._forward}/api/sessions/{rid}", {}
        if channel.kind == "agent":
            return f"{self._forward}/api/agents/{rid}", {}
        if channel.kind == "backtest":
            return f"{self._backtesting}/api/backtests/{rid}", {}
        if channel.kind == "sweep":
            return f"{self._backtesting}/api/backtests/sweeps/{rid}", {}
        if channel.kind == "market":
            symbol = quote(channel.symbol or "", safe="")
            params = {"timeframe": channel.timeframe or "1m", "limit": "1"}
            return f"{self._market}/api/market/symbols/{symbol}/latest", params
        raise ValueError(f"{channel.kind} channels have no single resource")

    async def read(self, principal: Principal, channel: Channel) -> Snapshot:
        """The resource's state as the subscriber may see it; `NotFound`, `Forbidden` or
        `DependencyUnavailable` (the owning service cannot answer) otherwise."""
        check_access(principal, channel)
        if channel.kind == "user":
            return Snapshot(None)
        url, params = self.url(channel)
        token = self._tokens.for_user(principal.user_id, *SCOPES[channel.kind])
        try:
            response = await self._client.get(
                url, params=params, headers={"authorization": f"Bearer {token}"}
            )
        except httpx.HTTPError as exc:
            raise DependencyUnavailable(
                f"the {channel.kind} state cannot be read now ({type(exc).__name__})"
            ) from None
        if response.status_code in (404, 422):
            raise NotFound(f"{channel.name} not found")
        if response.status_code == 403:
            raise Forbidden(f"{channel.name} is not yours to watch")
        if response.status_code != 200:
            raise DependencyUnavailable(
                f"the {channel.kind} state cannot be read now ({response.status_code})"
            )
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise DependencyUnavailable(f"the {channel.kind} state came back unreadable") from None
        if channel.kind == "market":
            bars = body.get("bars") or []
            data = {
                "symbol": body.get("symbol"),
                "timeframe": body.get("timeframe"),
                "owner": body.get("owner"),
                "bar": bars[-1] if bars else None,
            }
            return Snapshot(data, owner=body.get("owner"))
        return Snapshot(body)
