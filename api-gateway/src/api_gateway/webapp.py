"""The built web app (``web/dist``) served at ``/``, beside the API.

Every ``GET``/``HEAD`` outside the API's own prefixes (``/api``, ``/ws``, ``/docs``, the
OpenAPI document and the probes, which match their own routes first) is answered from the
build: a file that exists is sent as is, any other path gets ``index.html`` so that the app's
client-side routes (``/strategies/01J...``) survive a reload. Vite names everything under
``assets/`` by content hash, so those are cached forever; ``index.html`` and the other
unhashed files are revalidated on every load, so a new build is picked up at once.

The build is looked up on every request: building the app while the gateway runs needs no
restart. Without a build, the app's paths answer a 404 page that says how to build it, and
``/api/...`` paths that match no route keep their problem+json 404.
"""

from __future__ import annotations

import logging
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Match, Route
from starlette.types import Scope

logger = logging.getLogger(__name__)

RESERVED_PREFIXES = ("/api", "/ws", "/docs", "/openapi.json", "/healthz", "/readyz", "/metrics")
"""Paths that belong to the API: never answered with the app, whatever they are."""

HASHED_DIR = "assets"
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        # No inline <style> or style="": React (and React Flow) set styles through the CSSOM,
        # which CSP allows; the whole editor was checked in Chromium with this policy.
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        # 'self' covers the same origin's ws:// and wss:// (CSP Level 3) for /ws.
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

NOT_BUILT_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>AlgoTrade: web app not built</title></head>
<body>
<h1>The web app is not built</h1>
<p>The gateway found no build of the app (<code>WEB_DIST_DIR</code>, default
<code>web/dist</code>).</p>
<p>Build it with <code>make web</code> (<code>make run</code> builds it when its sources
changed). The API is up: see <a href="/docs">/docs</a>.</p>
</body></html>
"""


def default_web_dist() -> Path:
    """``web/dist`` of the source tree this package runs from (the workspace layout:
    ``<repo>/api-gateway/src/api_gateway/``); set ``WEB_DIST_DIR`` anywhere else."""
    return Path(__file__).resolve().parents[3] / "web" / "dist"


def is_app_path(path: str) -> bool:
    return not any(path == p or path.startswith(f"{p}/") for p in RESERVED_PREFIXES)


class WebAppRoute(Route):
    """A catch-all route that never claims an API path or a method other than GET/HEAD, so
    that those keep the router's own 404 and 405 answers."""

    def __init__(self, dist: Path) -> None:
        self.dist = dist
        super().__init__("/{path:path}", self.serve, methods=["GET"], include_in_schema=False)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if (
            scope["type"] != "http"
            or scope["method"] not in ("GET", "HEAD")
            or not is_app_path(scope["path"])
        ):
            return Match.NONE, {}
        return super().matches(scope)

    async def serve(self, request: Request) -> Response:
        dist = self.dist.resolve()
        index = dist / "index.html"
        if not index.is_file():
            return HTMLResponse(
                NOT_BUILT_PAGE,  # the server's paths are not the visitor's business
                status_code=404,
                headers={"Cache-Control": REVALIDATE, **SECURITY_HEADERS},
            )
        file = _file_in(dist, request.path_params["path"])
        if file is None:
            if request.path_params["path"].startswith(f"{HASHED_DIR}/"):
                # A missing hashed asset is an old page asking for a replaced build: the
                # index would only be parsed as a script and fail obscurely.
                return Response("not found", status_code=404, media_type="text/plain")
            file = index
        cache = IMMUTABLE if file.is_relative_to(dist / HASHED_DIR) else REVALIDATE
        return FileResponse(file, headers={"Cache-Control": cache, **SECURITY_HEADERS})


def _file_in(dist: Path, relative: str) -> Path | None:
    """The regular file at ``relative`` inside ``dist``, or None (also for any escape)."""
    if not relative:
        return None
    candidate = (dist / relative).resolve()
    if not candidate.is_relative_to(dist) or not candidate.is_file():
        return None
    return candidate
