"""The gateway serves the built web app at / without taking any of the API's paths."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from api_gateway.webapp import CONTENT_SECURITY_POLICY, IMMUTABLE, REVALIDATE

StartGateway = Callable[..., contextlib.AbstractAsyncContextManager[Any]]
INDEX = (
    '<!doctype html><html><body><div id="root"></div>'
    '<script type="module" src="/assets/index-Ab12.js"></script></body></html>'
)


@contextlib.asynccontextmanager
async def serving(start_gateway: StartGateway, dist: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with start_gateway(web_dist_dir=dist) as (_, client):
        yield client


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    root = tmp_path / "dist"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text(INDEX)
    (root / "assets" / "index-Ab12.js").write_text("console.log('app')")
    (root / "favicon.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (tmp_path / "secret.txt").write_text("outside the build")
    return root


@pytest.fixture
async def web(start_gateway: StartGateway, dist: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(start_gateway, dist) as client:
        yield client


async def test_index_is_served_at_the_root_revalidated_with_a_csp(
    web: httpx.AsyncClient,
) -> None:
    response = await web.get("/")
    assert response.status_code == 200
    assert response.text == INDEX
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == REVALIDATE
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_hashed_assets_are_immutable_and_other_files_revalidated(
    web: httpx.AsyncClient,
) -> None:
    asset = await web.get("/assets/index-Ab12.js")
    assert asset.status_code == 200
    assert asset.text == "console.log('app')"
    assert "javascript" in asset.headers["content-type"]
    assert asset.headers["cache-control"] == IMMUTABLE
    icon = await web.get("/favicon.svg")
    assert icon.status_code == 200
    assert icon.headers["cache-control"] == REVALIDATE


async def test_client_side_routes_fall_back_to_the_index(web: httpx.AsyncClient) -> None:
    for path in ("/strategies", "/strategies/01JABCDEF/versions/3", "/login?next=/x"):
        response = await web.get(path)
        assert response.status_code == 200, path
        assert response.text == INDEX
        assert response.headers["cache-control"] == REVALIDATE


async def test_head_is_answered_like_get(web: httpx.AsyncClient) -> None:
    response = await web.head("/assets/index-Ab12.js")
    assert response.status_code == 200
    assert response.headers["cache-control"] == IMMUTABLE


async def test_a_missing_hashed_asset_is_a_404_not_the_index(web: httpx.AsyncClient) -> None:
    response = await web.get("/assets/index-OLD1.js")
    assert response.status_code == 404
    assert INDEX not in response.text


async def test_nothing_outside_the_build_is_served(web: httpx.AsyncClient) -> None:
    for path in ("/../secret.txt", "/%2e%2e/secret.txt", "/assets/../../secret.txt"):
        response = await web.get(path)
        assert "outside the build" not in response.text, path


@pytest.mark.parametrize(
    "path",
    ["/api/nothing-here", "/api/auth/nothing-here", "/docs/nothing-here", "/ws/x"],
)
async def test_api_paths_keep_their_problem_json_404(web: httpx.AsyncClient, path: str) -> None:
    response = await web.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["title"] == "Not found"


async def test_other_methods_on_app_paths_are_not_served_the_app(
    web: httpx.AsyncClient,
) -> None:
    response = await web.post("/strategies", json={})
    assert response.status_code in (404, 405)
    assert response.headers["content-type"] == "application/problem+json"


async def test_the_api_routes_still_answer_first(web: httpx.AsyncClient) -> None:
    docs = await web.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()
    assert (await web.get("/healthz")).status_code == 200


async def test_without_a_build_the_app_paths_say_how_to_build_it(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    async with serving(start_gateway, tmp_path / "no-dist") as client:
        response = await client.get("/strategies")
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("text/html")
        assert "The web app is not built" in response.text
        assert "make web" in response.text
        api = await client.get("/api/nothing-here")
        assert api.status_code == 404
        assert api.headers["content-type"] == "application/problem+json"


async def test_a_build_made_while_the_gateway_runs_is_served(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    dist = tmp_path / "dist"
    async with serving(start_gateway, dist) as client:
        assert (await client.get("/")).status_code == 404
        dist.mkdir()
        (dist / "index.html").write_text(INDEX)
        assert (await client.get("/")).text == INDEX
