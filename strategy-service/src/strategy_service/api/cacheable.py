"""JSON documents that change only with a deploy (node types, schema, templates), served with
a strong ETag so clients and shared caches revalidate with ``If-None-Match`` and get a 304."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import Request
from starlette.responses import Response

MAX_AGE_SECONDS = 300


@dataclass(frozen=True)
class CacheableJSON:
    body: bytes
    etag: str

    @classmethod
    def of(cls, document: Any) -> CacheableJSON:
        body = orjson.dumps(document)
        return cls(body=body, etag=f'"{hashlib.sha256(body).hexdigest()[:32]}"')

    def response(self, request: Request) -> Response:
        # The content is the same for every user, so shared caches may keep it.
        headers = {"ETag": self.etag, "Cache-Control": f"public, max-age={MAX_AGE_SECONDS}"}
        if _matches(request.headers.get("if-none-match"), self.etag):
            return Response(status_code=304, headers=headers)
        return Response(self.body, media_type="application/json", headers=headers)


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    for candidate in if_none_match.split(","):
        tag = candidate.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:  # If-None-Match compares weakly
            return True
    return False


@dataclass(frozen=True)
class Published:
    """The service's static documents, built once at startup."""

    node_types: CacheableJSON
    graph_schema: CacheableJSON
    templates: CacheableJSON
