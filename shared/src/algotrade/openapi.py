"""Error answers in a service's OpenAPI document, as the platform sends them.

FastAPI documents a request that fails validation as its own ``HTTPValidationError`` in
``application/json``, and routes declare the statuses they refuse with by a description alone or
as problem+json without a schema. Every error is in fact an RFC 9457 problem (`algotrade.problems`).
`document_problems` rewrites both to reference one ``Problem`` schema, so that clients generated
from the document, and the response-schema checks of the fuzz tests, see the answers as they are.

It also declares, on every operation, the errors the platform's own machinery may answer in
front of any route, each where it can happen (`platform_problems`): what a route refuses for
reasons of its own it declares itself. Specific statuses, not ``4XX``/``5XX`` ranges or
``default``: a client should know which answers exist, and a status check (schemathesis'
``status_code_conformance``) finds an undeclared one only if nothing declares them wholesale.
"""

from __future__ import annotations

import typing
from collections.abc import Iterator, Mapping
from typing import Any, Literal

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.security.base import SecurityBase

from algotrade.auth import Principal, current_principal
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

Access = Literal["public", "authenticated", "authorized"]
"""How an operation treats credentials: it reads none; it needs a valid one (401 otherwise); or
it also checks what the credential may do, a scope or a role (401, and 403)."""

_BAD_BODY = "the body is not (strict) JSON or not the declared format"
_BAD_URL = "a NUL character in the URL"
_FROM_MEMORY = frozenset({"/healthz", "/metrics"})
"""Probes of `algotrade.service` that answer from memory: no input, no dependency, no outage
(``/readyz`` reports an outage as its own 503, so it is left to the general rule)."""


def platform_problems(path: str, operation: Mapping[str, Any], access: Access) -> dict[str, str]:
    """The statuses the platform's machinery may answer for ``operation``, each with why.

    - 400: a request body that is not strict JSON (`algotrade.strict_json`; a route reading its
      own body refuses what it cannot parse the same way), or a NUL character in the path or
      query (`algotrade.middleware`), so where there is a body or a path or query parameter.
    - 401/403: per ``access``, from the credential dependencies (`algotrade.auth`).
    - 404: a path parameter naming nothing the caller can see.
    - 413: a body over the service's limit (`algotrade.middleware`).
    - 422: a parameter or body field failing validation.
    - 431: a request line and headers over the cap (`algotrade.server`), before any routing.
    - 503: a dependency unreachable (`algotrade.outages`), except for the probes that answer
      from memory.
    """
    parameters = [p for p in operation.get("parameters", ()) if isinstance(p, dict)]
    in_url = "{" in path or any(p.get("in") == "query" for p in parameters)
    body = "requestBody" in operation
    problems: dict[str, str] = {}
    bad = [why for why, applies in ((_BAD_BODY, body), (_BAD_URL, in_url)) if applies]
    if bad:
        problems["400"] = f"Bad request: {' or '.join(bad)}"
    if access != "public":
        problems["401"] = "Unauthorized: no credential, or not a valid one"
    if access == "authorized":
        problems["403"] = "Forbidden: the credential lacks a scope or role this needs"
    if "{" in path:
        problems["404"] = "Not found: a path parameter names nothing you can see"
    if body:
        problems["413"] = "Payload too large: the request body exceeds the limit"
    if body or parameters:
        problems["422"] = "Validation failed (every field at fault)"
    problems["431"] = "Request header fields too large"
    if path not in _FROM_MEMORY:
        problems["503"] = "A dependency is unreachable; retry later"
    return problems


def declare_problems(operation: dict[str, Any], problems: Mapping[str, str]) -> None:
    """Declare each status of ``problems`` (status -> description) on ``operation`` as a problem
    answer, unless the operation declares that status already (its own words win)."""
    responses: dict[str, Any] = operation.setdefault("responses", {})
    for status, description in problems.items():
        if status not in responses:
            responses[status] = {
                "description": description,
                "content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}},
            }
    # In status order, so that a reader (and a generated client) finds them where expected.
    operation["responses"] = dict(
        sorted(responses.items(), key=lambda kv: (kv[0] == "default", kv[0]))
    )


def document_problems(
    document: dict[str, Any], access: Mapping[tuple[str, str], Access] | None = None
) -> dict[str, Any]:
    """Point every error response of ``document`` at the ``Problem`` schema and declare the
    platform's own (`platform_problems`) on every operation, in place.

    ``access`` says how each operation, by ``(path, method)``, treats credentials (see
    `route_access`); an operation it does not name is taken as public.
    """
    problem = {"schema": {"$ref": PROBLEM_REF}}
    for path, method, operation in _operations(document):
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
        declare_problems(
            operation,
            platform_problems(path, operation, (access or {}).get((path, method), "public")),
        )
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
            app.openapi_schema = document_problems(build(), route_access(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def route_access(app: FastAPI) -> dict[tuple[str, str], Access]:
    """How each operation of ``app``, by ``(path, method)``, treats credentials, read from its
    dependencies.

    A dependency returning a `Principal` needs a credential: the one that reads it
    (`algotrade.auth.current_principal`, or one built on OpenAPI security schemes such as the
    gateway's) answers 401 without a valid one. Any other dependency returning a `Principal`
    exists to narrow who may pass, with a scope, a role or a kind of session, so it answers 403
    too (`principal_with_scope`, a service's ``reader``/``writer``, the gateway's
    ``current_user``). A route that reads the principal in its own body is not seen here: it
    declares 401 and 403 in its ``responses``.
    """
    access: dict[tuple[str, str], Access] = {}
    for context in iter_route_contexts(app.routes):
        path = context.path_format
        if path is None or not isinstance(context.original_route, APIRoute):
            continue
        found: Access = "public"
        for dependant in _dependants(context.dependant):
            if dependant.call is None or not _returns_principal(dependant.call):
                continue
            if _reads_credential(dependant):
                found = "authenticated" if found == "public" else found
            else:
                found = "authorized"
        for method in context.methods or ():
            access[(path, method.lower())] = found
    return access


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if method in _METHODS and isinstance(operation, dict):
                yield path, method, operation


def _dependants(root: Dependant) -> Iterator[Dependant]:
    for dependant in root.dependencies:
        yield dependant
        yield from _dependants(dependant)


def _returns_principal(call: Any) -> bool:
    try:
        hints = typing.get_type_hints(call)
    except Exception:  # not a function, or hints naming what its module cannot resolve
        return False
    return hints.get("return") is Principal


def _reads_credential(dependant: Dependant) -> bool:
    return dependant.call is current_principal or any(
        isinstance(sub.call, SecurityBase) for sub in dependant.dependencies
    )


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
