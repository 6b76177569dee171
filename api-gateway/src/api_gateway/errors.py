"""Errors only the gateway raises: upstream failures and rate limits with their headers.

They extend the platform's `AlgoTradeError` tree, so the shared handler would answer them too;
the handler installed here adds the headers a client needs (``Retry-After``,
``X-RateLimit-*``) that the shared one does not know about.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.responses import Response

from algotrade.errors import AlgoTradeError, DependencyUnavailable, RateLimited
from algotrade.problems import error_response, problem_response


class BadGateway(AlgoTradeError):
    """The upstream refused the connection, dropped it, or answered with garbage."""

    status = 502
    title = "Bad gateway"
    code = "bad_gateway"


class GatewayTimeout(AlgoTradeError):
    """The upstream did not answer within the route's timeout."""

    status = 504
    title = "Gateway timeout"
    code = "gateway_timeout"


class UpstreamUnavailable(DependencyUnavailable):
    """The upstream's circuit breaker is open: fail fast instead of piling up on it."""

    code = "upstream_unavailable"

    def __init__(self, detail: str, *, retry_after: float) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class RateLimitExceeded(RateLimited):
    """A rate limit said no; carries the ``X-RateLimit-*`` headers of the decision."""

    def __init__(
        self, detail: str, *, retry_after: float, limit_headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail, retry_after=retry_after)
        self.limit_headers = limit_headers or {}


def retry_after_header(seconds: float) -> str:
    """Whole seconds, rounded up, at least 1 (what the shared handler sends too)."""
    return str(max(1, int(seconds + 0.999)))


def gateway_error_response(exc: AlgoTradeError) -> Response:
    """The problem answer to any error the gateway raises, with the headers its kind needs."""
    if not isinstance(exc, UpstreamUnavailable | RateLimitExceeded):
        return error_response(exc)
    headers = {**exc.headers, "Retry-After": retry_after_header(exc.retry_after)}
    if isinstance(exc, RateLimitExceeded):
        headers.update(exc.limit_headers)
    return problem_response(
        exc.status, exc.title, exc.detail, code=exc.code, errors=exc.errors, headers=headers
    )


def install_gateway_handlers(app: FastAPI) -> None:
    async def with_headers(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, UpstreamUnavailable | RateLimitExceeded)
        return gateway_error_response(exc)

    app.add_exception_handler(UpstreamUnavailable, with_headers)
    app.add_exception_handler(RateLimitExceeded, with_headers)
