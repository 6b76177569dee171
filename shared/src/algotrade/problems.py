"""The one place errors become RFC 9457 ``application/problem+json`` answers.

`AlgoTradeError` subclasses map by their ``status``/``code``; request validation errors become
400 (malformed JSON) or 422 with an ``errors`` list; an unexpected error that means a dependency
could not be reached (`algotrade.outages`) is a 503, and anything else unexpected a 500 whose
body names only the request id (both sent by `algotrade.middleware`, which sees every
unexpected error while the request id is still set). A stack trace never reaches a client.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from algotrade.errors import AlgoTradeError, DependencyUnavailable, RateLimited
from algotrade.logs import request_id_var

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


def problem_response(
    status: int,
    title: str,
    detail: str,
    *,
    code: str,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": f"https://algotrade.dev/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if errors is not None:
        body["errors"] = errors
    if (rid := request_id_var.get()) is not None:
        body["request_id"] = rid
    return Response(
        orjson.dumps(body, default=str),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Drop `input` and `ctx`: they echo (possibly huge or secret) client data. A JSON decode
    # error keeps the decoder's reason (a position and what was wrong, never the input).
    errors = []
    for e in exc.errors()[:100]:
        message = e.get("msg")
        if e.get("type") == "json_invalid" and (reason := (e.get("ctx") or {}).get("error")):
            message = f"{message}: {str(reason)[:200]}"
        errors.append(
            {"loc": list(e.get("loc", ())), "code": e.get("type", "invalid"), "message": message}
        )
    return errors


def error_response(exc: AlgoTradeError) -> Response:
    """The problem answer to a platform error (what the handler below answers, for ASGI code
    that catches errors itself)."""
    headers = dict(exc.headers) or None
    if isinstance(exc, RateLimited):
        headers = {**exc.headers, "Retry-After": str(max(1, int(exc.retry_after + 0.999)))}
    if exc.status >= 500:
        logger.error("%s: %s", exc.code, exc.detail)
    return problem_response(
        exc.status, exc.title, exc.detail, code=exc.code, errors=exc.errors, headers=headers
    )


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(AlgoTradeError)
    async def algotrade_error(request: Request, exc: AlgoTradeError) -> Response:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = _validation_errors(exc)
        if any(e["code"] == "json_invalid" for e in errors):
            return problem_response(
                400,
                "Malformed JSON",
                "the request body is not valid JSON",
                code="malformed_json",
                errors=errors,
            )
        return problem_response(
            422,
            "Validation failed",
            f"{len(errors)} field(s) failed validation",
            code="validation_failed",
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "HTTP error")
        return problem_response(
            exc.status_code,
            title,
            str(exc.detail),
            code=f"http_{exc.status_code}",
            headers=dict(exc.headers) if exc.headers else None,
        )


def unexpected_error_response() -> Response:
    """The answer to an unexpected error: no internals, only the request id to quote."""
    return problem_response(
        500,
        "Internal error",
        "an unexpected error occurred; quote the request id",
        code="internal_error",
    )


def unavailable_response(what: str, error: BaseException) -> Response:
    """The answer to an unexpected error that means ``what`` could not be reached: it passes
    with the outage, so 503 as for `DependencyUnavailable`, naming the error's type only."""
    return problem_response(
        503,
        DependencyUnavailable.title,
        f"{what} is unavailable ({type(error).__name__})",
        code=DependencyUnavailable.code,
    )


def problem_detail(body: bytes, *, limit: int = 500) -> str | None:
    """The ``detail`` of another service's problem+json answer, for relaying a refusal to the
    caller in words (None when the body is not a problem)."""
    try:
        problem = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    detail = problem.get("detail") if isinstance(problem, dict) else None
    return detail[:limit] if isinstance(detail, str) and detail else None
