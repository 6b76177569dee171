"""The agent's wire bodies (`algotrade_sdk.protocol`) against the services' OpenAPI documents:
every endpoint exists, every field the agent sends or reads exists, every field a request needs
is sent, every enum value the agent sends is accepted, and every value an answer may hold is one
the agent knows."""

from __future__ import annotations

import functools
import types
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints, is_typeddict

import pytest

from algotrade_sdk import protocol
from algotrade_testkit.services import key_settings
from forward_test_service.config import Settings as ForwardSettings
from forward_test_service.main import create_app as forward_app
from market_data_service.config import Settings as MarketSettings
from market_data_service.main import create_app as market_app


@functools.cache
def documents() -> list[dict[str, Any]]:
    return [
        forward_app(ForwardSettings(environment="test", **key_settings("forward-test"))).openapi(),
        market_app(MarketSettings(environment="test", **key_settings())).openapi(),
    ]


def operation(method: str, path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    for doc in documents():
        found = doc["paths"].get(path, {}).get(method.lower())
        if found is not None:
            return found, doc
    raise AssertionError(f"{method} {path} is in no service's OpenAPI")


def branches(schema: dict[str, Any], doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The shapes a value may take: references followed, ``anyOf``/``oneOf`` flattened."""
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return [b for alternative in schema[key] for b in branches(alternative, doc)]
    return [schema]


def unwrap(hint: Any) -> list[Any]:
    """The alternatives of a hint (``X | None`` -> ``[X, None]``)."""
    if get_origin(hint) in (Union, types.UnionType):
        return [a for arg in get_args(hint) for a in unwrap(arg)]
    return [hint]


def compare(
    hint: Any, schema: dict[str, Any], doc: dict[str, Any], where: str, *, sending: bool
) -> list[str]:
    """Where ``hint`` and ``schema`` disagree, for a body the agent sends or reads."""
    problems: list[str] = []
    shapes = branches(schema, doc)
    for alternative in unwrap(hint):
        if alternative is type(None):
            if sending and not any(s.get("type") == "null" for s in shapes):
                problems.append(f"{where}: the agent may send null, the API takes none")
        elif is_typeddict(alternative):
            objects = [s for s in shapes if "properties" in s]
            if not objects:
                problems.append(f"{where}: an object in the agent, not in the API")
                continue
            properties = {k: v for s in objects for k, v in s["properties"].items()}
            required = {k for s in objects for k in s.get("required", [])}
            hints = get_type_hints(alternative)
            for name, field_hint in hints.items():
                if name not in properties:
                    problems.append(f"{where}.{name}: no such field in the API")
                    continue
                problems += compare(
                    field_hint, properties[name], doc, f"{where}.{name}", sending=sending
                )
            if sending:
                left_out = required - set(alternative.__required_keys__)
                problems += [f"{where}.{name}: required, not always sent" for name in left_out]
        elif get_origin(alternative) is list:
            items = [s["items"] for s in shapes if "items" in s]
            if not items:
                problems.append(f"{where}: a list in the agent, not in the API")
            for item in items:
                problems += compare(
                    get_args(alternative)[0], item, doc, f"{where}[]", sending=sending
                )
        elif get_origin(alternative) is Literal:
            ours = set(get_args(alternative))
            theirs = {v for s in shapes for v in s.get("enum", [])}
            if sending and ours - theirs:
                problems.append(f"{where}: the API does not take {sorted(ours - theirs)}")
            if not sending and theirs - ours:
                problems.append(f"{where}: the agent does not know {sorted(theirs - ours)}")
    return problems


def request_schema(op: dict[str, Any]) -> dict[str, Any]:
    return dict(op["requestBody"]["content"]["application/json"]["schema"])


def response_schema(op: dict[str, Any]) -> dict[str, Any]:
    ok = next(op["responses"][code] for code in ("200", "201") if code in op["responses"])
    return dict(ok["content"]["application/json"]["schema"])


@pytest.mark.parametrize(
    ("method", "path"), list(protocol.ENDPOINTS), ids=[f"{m} {p}" for m, p in protocol.ENDPOINTS]
)
def test_each_body_the_agent_uses_matches_the_api(method: str, path: str) -> None:
    request, answer = protocol.ENDPOINTS[(method, path)]
    op, doc = operation(method, path)
    problems: list[str] = []
    if request is not None:
        problems += compare(request, request_schema(op), doc, "request", sending=True)
    if is_typeddict(answer):
        problems += compare(answer, response_schema(op), doc, "answer", sending=False)
    assert problems == []


def test_the_long_poll_takes_wait_and_limit_up_to_the_agents_maximum() -> None:
    op, _ = operation("GET", protocol.COMMANDS)
    params = {p["name"]: p["schema"] for p in op["parameters"] if p["in"] == "query"}
    assert params["wait"]["maximum"] == protocol.POLL_WAIT_MAX_SECONDS
    assert params["limit"]["maximum"] >= 10


def test_the_comparison_finds_what_it_is_for() -> None:
    """Guards the check above against passing vacuously."""
    from typing import TypedDict

    class Wrong(TypedDict):
        outcome: Literal["executed", "exploded"]
        ticket: str
        colour: str

    op, doc = operation("POST", protocol.ACK)
    assert sorted(compare(Wrong, request_schema(op), doc, "request", sending=True)) == [
        "request.colour: no such field in the API",
        "request.outcome: the API does not take ['exploded']",
    ]

    class Shy(TypedDict):
        state: Literal["healthy"]

    op, doc = operation("POST", protocol.HEARTBEAT)
    assert compare(Shy, response_schema(op), doc, "answer", sending=False) == [
        "answer.state: the agent does not know ['degraded', 'offline', 'stale']"
    ]
    assert sorted(compare(Shy, request_schema(op), doc, "request", sending=True)) == [
        "request.balance: required, not always sent",
        "request.equity: required, not always sent",
        "request.state: no such field in the API",
    ]
