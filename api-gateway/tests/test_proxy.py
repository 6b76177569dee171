"""Forwarding: the internal credential, header hygiene, failure mapping, breaker, streaming."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from algotrade.auth import Principal
from api_gateway.upstream_http import UpstreamConnectError, UpstreamPool

pytestmark = pytest.mark.timeout(60)


def _headers(body: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in body["headers"]:
        out.setdefault(name, []).append(value)
    return out


@pytest.fixture
def auth(issue_token: Callable[..., str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(user_id='alice')}"}


async def test_request_reaches_service_with_internal_token_carrying_principal(
    client: httpx.AsyncClient,
    issue_token: Callable[..., str],
    verify_internal: Callable[[str], Principal],
) -> None:
    token = issue_token(user_id="alice", roles=frozenset({"user", "admin"}))
    response = await client.get(
        "/api/strategies/42/versions?limit=5", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["method"] == "GET"
    assert body["path"] == "/api/strategies/42/versions"
    assert body["query"] == "limit=5"
    assert body["principal"] == {
        "user_id": "alice",
        "roles": ["admin", "user"],
        "scopes": ["*"],
        "api_key_id": None,
    }
    forwarded = _headers(body)["authorization"]
    assert len(forwarded) == 1
    internal = forwarded[0].removeprefix("Bearer ")
    assert internal != token
    assert verify_internal(internal).user_id == "alice"


async def test_every_routed_prefix_is_forwarded(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    for path in (
        "/api/strategies",
        "/api/market/bars/EURUSD",
        "/api/backtests/1",
        "/api/sessions/9/trades",
        "/api/agents/a1/commands",
        "/api/analytics/portfolio",
    ):
        response = await client.get(path, headers=auth)
        assert response.status_code == 200, (path, response.text)
        assert response.json()["path"] == path


async def test_client_credentials_identity_and_hop_by_hop_headers_are_stripped(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await client.post(
        "/api/strategies",
        content=b'{"name": "x"}',
        headers={
            **auth,
            "Content-Type": "application/json",
            "X-User-Id": "admin",
            "X-API-Key": "atk_forged_value_that_is_long_enough",
            "Cookie": "session=abc",
            "Proxy-Authorization": "Basic Zm9vOmJhcg==",
            "Connection": "keep-alive, X-Secret-Hop",
            "X-Secret-Hop": "1",
            "Keep-Alive": "timeout=5",
            "X-Forwarded-For": "6.6.6.6",
            "X-Custom": "kept",
        },
    )
    assert response.status_code == 200, response.text
    seen = _headers(response.json())
    for dropped in (
        "x-user-id",
        "x-api-key",
        "cookie",
        "proxy-authorization",
        "x-secret-hop",
        "keep-alive",
    ):
        assert dropped not in seen, dropped
    assert seen["x-custom"] == ["kept"]
    assert seen["x-forwarded-for"] == ["127.0.0.1"]  # the gateway's view of the client
    assert seen["content-type"] == ["application/json"]
    assert response.json()["body_bytes"] == len(b'{"name": "x"}')


async def test_request_id_is_propagated_and_returned_once(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await client.get(
        "/api/market/x", headers={**auth, "X-Request-ID": "req-123", "X-Correlation-ID": "c-9"}
    )
    assert response.status_code == 200
    seen = _headers(response.json())
    assert seen["x-request-id"] == ["req-123"]
    assert seen["x-correlation-id"] == ["c-9"]
    assert response.headers.get_list("x-request-id") == ["req-123"]

    generated = await client.get("/api/market/x", headers=auth)
    request_id = generated.headers["x-request-id"]
    assert _headers(generated.json())["x-request-id"] == [request_id]


async def test_upstream_hop_by_hop_response_headers_are_stripped(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await client.get("/api/strategies/headers-out", headers=auth)
    assert response.status_code == 200
    assert response.headers["x-upstream"] == "yes"
    assert "x-private-hop" not in response.headers
    assert "keep-alive" not in response.headers
    assert response.headers["set-cookie"].startswith("session=upstream")
    assert len(response.headers.get_list("x-request-id")) == 1


async def test_unrouted_paths_missing_credentials_and_dot_segments_are_refused(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    unknown = await client.get("/api/nothing-here", headers=auth)
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"

    anonymous = await client.get("/api/strategies")
    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "unauthorized"

    dotted = await client.get("/api/strategies/%2e%2e/admin", headers=auth)
    assert dotted.status_code == 400


async def test_connection_refused_is_502(
    start_gateway: Callable[..., Any], dead_url: str, auth: dict[str, str]
) -> None:
    async with start_gateway(market_data_service_url=dead_url) as (_, client):
        response = await client.get("/api/market/bars", headers=auth)
        assert response.status_code == 502
        assert response.json()["code"] == "bad_gateway"
        # Other routes are unaffected.
        assert (await client.get("/api/strategies", headers=auth)).status_code == 200


async def test_slow_upstream_is_504(
    start_gateway: Callable[..., Any], auth: dict[str, str]
) -> None:
    async with start_gateway(upstream_timeout_seconds=0.3) as (_, client):
        response = await client.get("/api/market/slow?seconds=2", headers=auth)
        assert response.status_code == 504
        assert response.json()["code"] == "gateway_timeout"


async def test_breaker_opens_after_consecutive_failures_and_fails_fast_with_503(
    start_gateway: Callable[..., Any], dead_url: str, auth: dict[str, str]
) -> None:
    async with start_gateway(
        market_data_service_url=dead_url,
        breaker_failure_threshold=2,
        breaker_cooldown_seconds=30,
        breaker_min_callers=1,
    ) as (_app, client):
        assert (await client.get("/api/market/a", headers=auth)).status_code == 502
        assert (await client.get("/api/market/a", headers=auth)).status_code == 502
        refused = await client.get("/api/market/a", headers=auth)
        assert refused.status_code == 503
        assert refused.json()["code"] == "upstream_unavailable"
        assert 25 <= int(refused.headers["retry-after"]) <= 30
        ready = (await client.get("/readyz")).json()
        assert ready["upstreams"]["market-data-service"] == "open"


async def test_breaker_half_opens_after_cooldown_and_closes_on_success(
    start_gateway: Callable[..., Any], auth: dict[str, str]
) -> None:
    async with start_gateway(
        breaker_failure_threshold=2, breaker_cooldown_seconds=0.3, breaker_min_callers=1
    ) as (_, client):
        for _ in range(2):
            # Upstream 503s count as failures; they are passed through as they are.
            assert (await client.get("/api/backtests/status/503", headers=auth)).status_code == 503
        open_ = await client.get("/api/backtests/status/200", headers=auth)
        assert open_.json()["code"] == "upstream_unavailable"
        await asyncio.sleep(0.35)
        trial = await client.get("/api/backtests/status/200", headers=auth)
        assert trial.status_code == 200
        assert (await client.get("/api/backtests/status/200", headers=auth)).status_code == 200


async def test_one_users_failing_requests_never_open_the_breaker_for_everyone(
    start_gateway: Callable[..., Any], issue_token: Callable[..., str], auth: dict[str, str]
) -> None:
    mallory = {"Authorization": f"Bearer {issue_token(user_id='mallory')}"}
    async with start_gateway(breaker_failure_threshold=2, breaker_cooldown_seconds=30) as (
        app,
        client,
    ):
        for _ in range(20):  # 5xx answers to one user's requests
            assert (await client.get("/api/backtests/status/503", headers=mallory)).status_code == (
                503
            )
        for code in (400, 404, 409, 422):  # 4xx are the caller's errors, never the service's
            assert (
                await client.get(f"/api/backtests/status/{code}", headers=auth)
            ).status_code == (code)
        assert (await client.get("/api/backtests/status/200", headers=auth)).status_code == 200
        breaker = app.state.services.upstreams["backtesting-service"].breaker
        assert breaker.state == "closed"
        # When a second user also gets 5xx, the service is failing for real: the breaker opens.
        await client.get("/api/backtests/status/503", headers=mallory)
        await client.get("/api/backtests/status/503", headers=auth)
        assert breaker.state == "open"


async def test_upstream_errors_that_are_not_outages_pass_through(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    for code in (404, 409, 500):
        response = await client.get(f"/api/backtests/status/{code}", headers=auth)
        assert response.status_code == code
        assert response.json() == {"status": code}


class _RefuseFirstConnect:
    """Refuses the first connection, then behaves like the real pool it wraps."""

    def __init__(self, real: UpstreamPool) -> None:
        self.real = real
        self.attempts = 0

    async def request(self, *args: Any, **kwargs: Any) -> Any:
        self.attempts += 1
        if self.attempts == 1:
            raise UpstreamConnectError("connection refused")
        return await self.real.request(*args, **kwargs)

    async def aclose(self) -> None:
        await self.real.aclose()


async def test_connect_errors_are_retried_for_idempotent_methods_only(
    start_gateway: Callable[..., Any], auth: dict[str, str]
) -> None:
    async with start_gateway() as (app, client):
        upstream = app.state.services.upstreams["strategy-service"]
        flaky = _RefuseFirstConnect(upstream.pool)
        upstream.pool = flaky
        assert (await client.get("/api/strategies", headers=auth)).status_code == 200
        assert flaky.attempts == 2

        flaky.attempts = 0
        post = await client.post("/api/strategies", content=b"{}", headers=auth)
        assert post.status_code == 502
        assert flaky.attempts == 1


async def test_upload_is_streamed_to_the_service_not_buffered(
    client: httpx.AsyncClient, auth: dict[str, str], echo: Any
) -> None:
    chunk = b"x" * 65_536
    total = 64

    async def body() -> AsyncIterator[bytes]:
        yield chunk
        # The rest is sent only once the service has the first chunk: a gateway that read
        # the whole body before forwarding would wait forever here.
        await asyncio.wait_for(echo.first_chunk.wait(), timeout=5)
        for _ in range(total - 1):
            yield chunk

    response = await client.post("/api/market/imports/bars.csv", content=body(), headers=auth)
    assert response.status_code == 200, response.text
    assert response.json()["body_bytes"] == len(chunk) * total
    assert response.json()["body_sha256"] == hashlib.sha256(chunk * total).hexdigest()


async def test_oversized_body_is_refused_with_413(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await client.post("/api/strategies", content=b"x" * 2_000_000, headers=auth)
    assert response.status_code == 413


async def test_response_is_streamed_back_as_it_arrives(
    serve_gateway: Callable[..., Any], auth: dict[str, str], echo: Any
) -> None:
    async with (
        serve_gateway() as url,
        httpx.AsyncClient(base_url=url) as http,
        http.stream("GET", "/api/market/stream", headers=auth) as response,
    ):
        assert response.status_code == 200
        chunks = response.aiter_raw()
        first = await asyncio.wait_for(anext(chunks), timeout=5)
        assert first == b"first-chunk;"
        echo.release_response.set()
        rest = b"".join([c async for c in chunks])
        assert rest == b"second-chunk"


async def test_cors_preflight_for_configured_origin(start_gateway: Callable[..., Any]) -> None:
    async with start_gateway(cors_origins=["https://app.example"]) as (_, client):
        preflight = await client.options(
            "/api/strategies",
            headers={
                "Origin": "https://app.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://app.example"
        other = await client.options(
            "/api/strategies",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        )
        assert "access-control-allow-origin" not in other.headers


async def test_merged_openapi_has_gateway_and_service_paths_and_survives_a_dead_service(
    start_gateway: Callable[..., Any], dead_url: str
) -> None:
    async with start_gateway(analytics_service_url=dead_url) as (_, client):
        response = await client.get("/openapi.json")
        assert response.status_code == 200
        document = response.json()
        paths = document["paths"]
        assert "/api/auth/login" in paths
        assert "/api/api-keys" in paths
        # The echo service answers for every upstream; each contributes the paths it owns.
        assert "/api/market/slow" in paths
        assert "/api/backtests/status/{code}" in paths
        assert "/api/strategies/headers-out" in paths
        assert "/api/{path}" not in paths  # not routed by the table
        assert "/healthz" in paths and "/api/strategies/headers-out" in paths
        slow = paths["/api/market/slow"]["get"]
        assert slow["tags"] == ["market-data-service"]
        assert {"HTTPBearer": []} in slow["security"]
        upstreams = document["x-upstreams"]
        assert upstreams["analytics-service"]["status"] == "unavailable"
        assert upstreams["market-data-service"] == {"status": "ok", "paths": 2}
        assert "analytics-service" in document["info"]["description"]
        assert (await client.get("/docs")).status_code == 200
        from openapi_spec_validator import validate

        validate(document)  # the merged document is valid OpenAPI, every $ref resolving


async def test_readyz_reports_dependencies_limits_and_breakers(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"] == {"postgres": "ok", "redis": "ok"}
    assert body["rate_limiting"] == {"state": "enforced"}
    assert set(body["upstreams"].values()) == {"closed"}
