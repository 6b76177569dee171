"""`algotrade.market_client`: how the market data service's answers map, for every service that
reads it. The service's real answers (404 for a series nobody may read, 422 for a bad range)
are exercised against the real market data app by the callers' tests (backtesting's bar
sources, the forward sessions' warm-up, analytics' benchmarks); here an `httpx.MockTransport`
answers each status in turn, which is the mapping under test, not the market data service."""

from __future__ import annotations

import httpx
import orjson
import pytest

from algotrade.auth import InternalTokens
from algotrade.config import ServiceSettings
from algotrade.errors import DependencyUnavailable
from algotrade.market_client import MarketClient, MarketRefused, MarketUnknown
from algotrade_testkit.services import key_settings


def client(answer: httpx.Response | Exception, seen: list[httpx.Request]) -> MarketClient:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if isinstance(answer, Exception):
            raise answer
        return answer

    tokens = InternalTokens(
        ServiceSettings(environment="test", **key_settings("gateway")), ttl_seconds=60
    )
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return MarketClient(http, "http://market.test/", tokens)


async def test_a_read_carries_the_user_s_token_and_answers_the_200() -> None:
    seen: list[httpx.Request] = []
    market = client(httpx.Response(200, json={"bars": []}), seen)
    url = market.url("BTC/USD", "bars")
    assert url == "http://market.test/api/market/symbols/BTC%2FUSD/bars"
    answer = await market.get("u1", url, {"timeframe": "1h"}, accept="application/json")
    assert answer.json() == {"bars": []}
    (request,) = seen
    assert request.url.params["timeframe"] == "1h"
    assert request.headers["accept"] == "application/json"
    assert request.headers["authorization"].startswith("Bearer ")


@pytest.mark.parametrize("status", [403, 404])
async def test_a_series_the_user_may_not_read_is_unknown(status: int) -> None:
    market = client(httpx.Response(status, json={"detail": "no"}), [])
    with pytest.raises(MarketUnknown):
        await market.get("u1", market.url("X", "bars"), {})


@pytest.mark.parametrize("status", [400, 422])
async def test_a_refusal_keeps_the_service_s_problem(status: int) -> None:
    problem = {"detail": "the range is too large", "errors": [{"code": "range_too_large"}]}
    market = client(httpx.Response(status, content=orjson.dumps(problem)), [])
    with pytest.raises(MarketRefused) as refused:
        await market.get("u1", market.url("X", "bars"), {})
    assert (refused.value.status, refused.value.codes) == (status, {"range_too_large"})
    assert refused.value.detail == "the range is too large"
    garbled = client(httpx.Response(status, content=b"<html>no</html>"), [])
    with pytest.raises(MarketRefused) as refused:
        await garbled.get("u1", garbled.url("X", "bars"), {})
    assert (refused.value.problem, refused.value.codes) == ({}, set())
    assert refused.value.detail == "<html>no</html>"


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(500),
        httpx.Response(503),
        httpx.Response(302, headers={"location": "/elsewhere"}),
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
    ],
)
async def test_outages_and_anything_else_are_503(answer: httpx.Response | Exception) -> None:
    market = client(answer, [])
    with pytest.raises(DependencyUnavailable):
        await market.get("u1", market.url("X", "bars"), {})
