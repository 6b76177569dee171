"""Error answers in a service's OpenAPI document, as the platform sends them.

FastAPI documents a request that fails validation as its own ``HTTPValidationError`` in
``application/json``, and routes declare the statuses they refuse with by a description alone or
as problem+json without a schema. Every error is in fact an RFC 9457 problem (`algotrade.problems`).
`document_problems` rewrites both to reference one ``Problem`` schema, so that clients generated
from the document, and the response-schema checks of the fuzz tests, see the answers as they are.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from algotrade.problems import PROBLEM_JSON

PROBLEM_REF = "#/components/schemas/Problem"
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "An RFC 9457 problem: every error answer of the platform.",
    "type": "object",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string", "description": "a URI naming the kind of problem"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 100, "maximum": 599},
        "detail": {"type": "string"},
        "code": {"type": "string", "description": "a stable, machine-readable problem code"},
        "errors": {
            "type": "array",
            "description": "what was wrong, one item per problem found (validation, rules)",
            "items": {"type": "object"},
        },
        "request_id": {"type": "string", "description": "quote it when reporting the problem"},
    },
}
_FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")
_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


def document_problems(document: dict[str, Any]) -> dict[str, Any]:
    """Point every error response of ``document`` at the ``Problem`` schema (in place)."""
    problem = {"schema": {"$ref": PROBLEM_REF}}
    for item in document.get("paths", {}).values():
        for method, operation in item.items():
            if method not in _METHODS or not isinstance(operation, dict):
                continue
            for status, response in operation.get("responses", {}).items():
                content = response.get("content") or {}
                if status == "422" and _is_fastapi_validation(content.get("application/json")):
                    response["description"] = "Validation failed (every field at fault)"
                    response["content"] = {PROBLEM_JSON: problem}
                elif PROBLEM_JSON in content and not content[PROBLEM_JSON].get("schema"):
                    content[PROBLEM_JSON] = {**content[PROBLEM_JSON], **problem}
                elif not content and status[:1] in ("4", "5"):
                    # Declared with a description only; the handlers answer problem+json.
                    response["content"] = {PROBLEM_JSON: problem}
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    if not _references(document, _FASTAPI_VALIDATION[0]):
        for name in _FASTAPI_VALIDATION:
            schemas.pop(name, None)
    return document


def install_problem_openapi(app: FastAPI) -> None:
    """Make ``app``'s OpenAPI document describe its problem answers (`document_problems`)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_problems(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _is_fastapi_validation(media: Any) -> bool:
    ref = (media or {}).get("schema", {}).get("$ref", "")
    return isinstance(ref, str) and ref.endswith(f"/{_FASTAPI_VALIDATION[0]}")


def _references(node: Any, name: str) -> bool:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.endswith(f"/{name}"):
            return True
        return any(_references(value, name) for value in node.values())
    if isinstance(node, list):
        return any(_references(value, name) for value in node)
    return False
