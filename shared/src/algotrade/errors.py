"""One exception root for the platform, mapped to RFC 9457 problem+json in `algotrade.service`."""

from __future__ import annotations

from typing import Any, ClassVar


class AlgoTradeError(Exception):
    """Root of every error the platform raises on purpose.

    Subclasses set ``status``, ``title`` and a stable ``code``; ``errors`` carries per-field or
    per-item problems (each a dict with at least ``loc``/``code``/``message`` or the area's own
    keys) so clients can show all of them at once.
    """

    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"
    code: ClassVar[str] = "internal_error"

    def __init__(self, detail: str, *, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        # Headers the answer carries besides the problem (e.g. the gateway's X-RateLimit-*).
        self.headers: dict[str, str] = {}


class BadRequest(AlgoTradeError):
    status = 400
    title = "Bad request"
    code = "bad_request"


class ValidationFailed(AlgoTradeError):
    status = 422
    title = "Validation failed"
    code = "validation_failed"


class Unauthorized(AlgoTradeError):
    status = 401
    title = "Unauthorized"
    code = "unauthorized"


class Forbidden(AlgoTradeError):
    status = 403
    title = "Forbidden"
    code = "forbidden"


class NotFound(AlgoTradeError):
    status = 404
    title = "Not found"
    code = "not_found"


class Conflict(AlgoTradeError):
    status = 409
    title = "Conflict"
    code = "conflict"


class PayloadTooLarge(AlgoTradeError):
    status = 413
    title = "Payload too large"
    code = "payload_too_large"


class RateLimited(AlgoTradeError):
    status = 429
    title = "Too many requests"
    code = "rate_limited"

    def __init__(self, detail: str, *, retry_after: float) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class DependencyUnavailable(AlgoTradeError):
    status = 503
    title = "Dependency unavailable"
    code = "dependency_unavailable"


class ConfigurationError(AlgoTradeError):
    """Settings that must not be used to start a service (e.g. a placeholder secret in prod)."""

    code = "configuration_error"


class EventError(AlgoTradeError):
    """A Kafka message that is not a valid event: unknown type, bad envelope, bad payload."""

    status = 400
    title = "Invalid event"
    code = "invalid_event"
