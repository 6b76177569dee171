"""What can go wrong in a call: an answer that is a problem (`ApiError` and one subclass per
meaning), or no answer at all (`TransportError`).

Every non-2xx answer of the platform is ``application/problem+json`` (RFC 9457): ``type``,
``title``, ``status``, ``detail``, ``code``, ``request_id`` and, for validation, an ``errors``
list with locations. `api_error` turns one into the exception of its status, keeping the whole
body in ``problem``. Messages name the method, the path, the status, the title and the detail;
never a header, so never a credential.
"""

from __future__ import annotations

import json
from typing import Any

import httpx


class ApiError(Exception):
    """A problem answer (RFC 9457) as an exception."""

    status: int
    title: str
    detail: str
    code: str | None
    errors: list[dict[str, Any]]
    problem: dict[str, Any]
    request_id: str | None

    def __init__(
        self,
        problem: dict[str, Any],
        *,
        status: int | None = None,
        request_id: str | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        self.problem = problem
        self.status = int(status if status is not None else problem.get("status") or 0)
        self.title = str(problem.get("title") or "")
        self.detail = str(problem.get("detail") or "")
        code = problem.get("code")
        self.code = str(code) if code is not None else None
        errors = problem.get("errors")
        self.errors = [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []
        rid = problem.get("request_id") or request_id
        self.request_id = str(rid) if rid else None
        self.method = method
        self.path = path
        super().__init__(self._message())

    def _message(self) -> str:
        where = f"{self.method} {self.path}: " if self.method and self.path else ""
        text = f"{where}{self.status} {self.title}".rstrip()
        if self.detail and self.detail != self.title:
            text += f": {self.detail}"
        if self.request_id:
            text += f" (request {self.request_id})"
        return text

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}(status={self.status}, code={self.code!r}, detail={self.detail!r})"


class BadRequest(ApiError):
    """400: the request could not be read (malformed JSON, a bad cursor...)."""


class Unauthorized(ApiError):
    """401: no credential, or one that is wrong, expired or revoked."""


class Forbidden(ApiError):
    """403: the credential may not do this (a scope it lacks, a user-only action)."""


class NotFound(ApiError):
    """404: nothing of yours by that id (another user's things answer the same)."""


class Conflict(ApiError):
    """409: the resource's state forbids it (a stale version, results not ready, a limit)."""


class Unprocessable(ApiError):
    """422: the request was read but is invalid; ``errors`` names each field (``loc``)."""


class RateLimited(ApiError):
    """429: too many requests; ``retry_after`` is the server's Retry-After, in seconds."""

    retry_after: float | None = None


class ServerError(ApiError):
    """5xx: the platform or one of its dependencies failed; ``retry_after`` when it said."""

    retry_after: float | None = None


class TransportError(Exception):
    """No answer: the connection was refused or dropped, or the call timed out."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: Unprocessable,
    429: RateLimited,
}


def error_class(status: int) -> type[ApiError]:
    if status >= 500:
        return ServerError
    return _BY_STATUS.get(status, ApiError)


def api_error(response: httpx.Response) -> ApiError:
    """The exception for a non-2xx ``response`` (its body read)."""
    return build_error(
        response.status_code,
        response.content,
        response.headers,
        method=response.request.method if _has_request(response) else None,
        path=response.request.url.path if _has_request(response) else None,
        reason=response.reason_phrase,
    )


def build_error(
    status: int,
    body: bytes,
    headers: httpx.Headers | dict[str, str],
    *,
    method: str | None = None,
    path: str | None = None,
    reason: str = "",
) -> ApiError:
    """The exception for an answer of ``status`` with ``body`` (a problem, or anything else:
    then its start becomes the detail)."""
    headers = httpx.Headers(headers)
    problem = _problem(body)
    if problem is None:
        text = body[:500].decode("utf-8", "replace").strip()
        problem = {"title": reason or f"HTTP {status}", "status": status, "detail": text}
    error = error_class(status)(
        problem,
        status=status,
        request_id=headers.get("x-request-id"),
        method=method,
        path=path,
    )
    if isinstance(error, RateLimited | ServerError):
        error.retry_after = _seconds(headers.get("retry-after"))
    return error


def _problem(body: bytes) -> dict[str, Any] | None:
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:  # an HTTP date: the gateway sends seconds
        return None


def _has_request(response: httpx.Response) -> bool:
    try:
        response.request  # noqa: B018 - raises when the response was built without one
    except RuntimeError:
        return False
    return True
