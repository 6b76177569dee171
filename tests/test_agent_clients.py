"""The reference agent clients (``clients/mt5``, ``clients/ninjatrader``) against the services'
OpenAPI: every path, JSON field and enum value they send or read must exist in the API.

Each client declares what it uses in one block between ``// @protocol-begin`` and
``// @protocol-end``, and this test parses that block:

- an endpoint is a string constant ``"<METHOD> <path>[?query]"``; ``%s``, ``%d``, ``{0}`` and
  ``{id}`` placeholders all read as one path parameter (in C# it is an ``Endpoint<Request,
  Response>``, whose two DTO classes must be declared for that endpoint's request and answer);
- ``// @fields <location>`` starts a group of JSON field names: MQL5 ``#define NAME "field"``,
  C# ``[DataMember(Name = "field")]`` members of the DTO class that follows;
- ``// @values <location> <field>`` starts a group of enum values (``#define``/``const string``);
- ``<location>`` is ``<METHOD> <path> request|response`` and then steps into the body (``data[]``
  steps into the items of ``data``), or ``#<Schema>`` for a component such as ``#Problem``;
  several locations may be joined by `` | ``.

Outside the block a client names no path and no JSON key of its own: MQL5's JSON helpers take
their key from a block macro (writers a request field, readers an answer field), and C# reads
and writes only the block's DTOs. So what the block says is what goes over the wire.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
CLIENTS = ROOT / "clients"
MT5_FILES = ("mt5/AlgoTradeAgent.mqh", "mt5/AlgoTradeExample.mq5")
NINJATRADER_FILES = ("ninjatrader/AlgoTradeAgent.cs", "ninjatrader/AlgoTradeExampleStrategy.cs")

BEGIN, END = "// @protocol-begin", "// @protocol-end"
STRING = re.compile(r'"((?:[^"\\\n]|\\.)*)"')
ENDPOINT = re.compile(r"^(GET|POST|PUT|PATCH|DELETE) (/\S*)$")
PLACEHOLDER = re.compile(r"\{[^}/]*\}|%I64[du]|%[sdu]")
GROUP = re.compile(r"^\s*// @(fields|values)\s+(.+?)\s*$")
MQL_DEFINE = re.compile(r'^\s*#define\s+(\w+)\s+"([^"]*)"\s*$')
CS_MEMBER = re.compile(r'\[DataMember\(\s*Name\s*=\s*"([^"]*)"')
CS_CONST = re.compile(r'\bconst\s+string\s+\w+\s*=\s*"([^"]*)"\s*;')
CS_ENDPOINT = re.compile(r'new\s+Endpoint<\s*(\w+)\s*,\s*(\w+)\s*>\(\s*"([^"]*)"\s*\)')
CS_CLASS = re.compile(r"\bclass\s+(\w+)")
# MQL5 JSON helpers: writers take the key first (`w.Num(KEY, value)`), readers second
# (`AtJsonStr(json, KEY)`). Inside the helpers themselves the key is their parameter `key`.
MQL_WRITER = re.compile(r"\.(?:Num|Int|Str|Bool|BeginArray)\(")
MQL_READER = re.compile(r"\bAtJson(?:Raw|Str|Num|Has)\(")
HELPER_PARAMETER = "key"
DECLARED_PARAMETER = re.compile(r"^(?:const\s+)?\w+\s*&?\s+&?\w+(?:\[\])?$")
JSON_KEY_LITERAL = re.compile(r'\\"[A-Za-z_]\w*\\"\s*:')


# ---- the API ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Api:
    """The operations of the services' OpenAPI documents, by method and normalised path."""

    operations: dict[tuple[str, str], tuple[dict[str, Any], dict[str, Any]]]
    components: dict[str, tuple[dict[str, Any], dict[str, Any]]]

    @classmethod
    def of(cls, *documents: dict[str, Any]) -> Api:
        operations = {}
        components = {}
        for doc in documents:
            for path, item in doc["paths"].items():
                for method, operation in item.items():
                    operations[(method.upper(), normalise(path))] = (operation, doc)
            for name, schema in doc.get("components", {}).get("schemas", {}).items():
                components.setdefault(name, (schema, doc))
        return cls(operations, components)


def normalise(path: str) -> str:
    return PLACEHOLDER.sub("{}", path.split("?", 1)[0])


def _deref(schema: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _branches(schema: dict[str, Any], doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The shapes a value may take: ``anyOf``/``oneOf`` flattened, references followed."""
    schema = _deref(schema, doc)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return [b for alternative in schema[key] for b in _branches(alternative, doc)]
    return [schema]


def _step(schemas: list[dict[str, Any]], step: str, doc: dict[str, Any]) -> list[dict[str, Any]]:
    name, many = step.removesuffix("[]"), step.endswith("[]")
    found = []
    for schema in schemas:
        for branch in _branches(schema, doc):
            prop = branch.get("properties", {}).get(name)
            if prop is None:
                continue
            if many:
                found += [b["items"] for b in _branches(prop, doc) if "items" in b]
            else:
                found.append(prop)
    return found


@dataclass(frozen=True)
class Location:
    text: str
    method: str | None  # None for a component (``#Problem``)
    path: str | None
    part: str  # "request", "response", or "component"
    steps: tuple[str, ...]


def parse_location(text: str) -> Location:
    tokens = text.split()
    if tokens and tokens[0].startswith("#"):
        return Location(text, None, None, "component", (tokens[0][1:], *tokens[1:]))
    if len(tokens) < 3:
        return Location(text, None, None, "invalid", ())
    method, path, part, *steps = tokens
    return Location(text, method, normalise(path), part, tuple(steps))


def resolve(api: Api, where: Location) -> tuple[list[dict[str, Any]], dict[str, Any]] | str:
    """The schemas at ``where`` and their document, or why there are none."""
    if where.part == "component":
        name, *steps = where.steps
        if name not in api.components:
            return f"no component schema {name!r}"
        schema, doc = api.components[name]
        schemas = [schema]
    elif where.part in ("request", "response"):
        key = (where.method or "", where.path or "")
        if key not in api.operations:
            return f"no operation {where.method} {where.path}"
        operation, doc = api.operations[key]
        if where.part == "request":
            content = operation.get("requestBody", {}).get("content", {})
        else:
            ok = [r for status, r in operation["responses"].items() if status.startswith("2")]
            content = ok[0].get("content", {}) if ok else {}
        if "application/json" not in content:
            return f"{where.method} {where.path} has no JSON {where.part}"
        schemas = [content["application/json"]["schema"]]
        steps = list(where.steps)
    else:
        return "a location is '<METHOD> <path> request|response [steps]' or '#Schema [steps]'"
    for step in steps:
        schemas = _step(schemas, step, doc)
        if not schemas:
            return f"{where.text!r}: no {step!r} there"
    return schemas, doc


# ---- the clients' declarations ------------------------------------------------------------


@dataclass
class Endpoint:
    method: str
    path: str  # normalised
    query: list[str]
    line: int
    request_dto: str | None = None  # C# only
    response_dto: str | None = None


@dataclass
class Group:
    kind: str  # "fields" or "values"
    locations: list[Location]
    line: int
    names: list[tuple[int, str]] = field(default_factory=list)  # (line, field or value)
    macros: list[str] = field(default_factory=list)  # MQL5: the macro naming each name
    dto: str | None = None  # C#: the class carrying the fields


@dataclass
class Protocol:
    endpoints: list[Endpoint] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def key_macros(self, part: str) -> set[str]:
        """MQL5 macros naming a field of a request (``part="request"``) or an answer."""
        parts = {part, "component"} if part == "response" else {part}
        return {
            macro
            for g in self.groups
            if g.kind == "fields" and any(w.part in parts for w in g.locations)
            for macro in g.macros
        }


def strip_comment(line: str) -> str:
    """``line`` without its ``//`` comment (a ``//`` inside a string literal is kept)."""
    in_string = False
    i = 0
    while i < len(line):
        c = line[i]
        if in_string and c == "\\":
            i += 2
            continue
        if c == '"':
            in_string = not in_string
        elif not in_string and line.startswith("//", i):
            return line[:i]
        i += 1
    return line


def split_block(source: str) -> tuple[list[tuple[int, str]], list[tuple[int, str]], list[str]]:
    """(block lines, other lines, problems), lines numbered from 1."""
    lines = list(enumerate(source.splitlines(), start=1))
    begins = [n for n, text in lines if text.strip().startswith(BEGIN)]
    ends = [n for n, text in lines if text.strip().startswith(END)]
    if len(begins) != 1 or len(ends) != 1 or ends[0] < begins[0]:
        return [], lines, [f"one {BEGIN} ... {END} block expected"]
    block = [(n, t) for n, t in lines if begins[0] < n < ends[0]]
    other = [(n, t) for n, t in lines if n < begins[0] or n > ends[0]]
    return block, other, []


def parse_protocol(source: str, language: str) -> Protocol:
    block, _, problems = split_block(source)
    protocol = Protocol(problems=problems)
    group: Group | None = None
    for n, text in block:
        header = GROUP.match(text)
        if header:
            locations = [parse_location(part.strip()) for part in header[2].split("|")]
            group = Group(header[1], locations, n)
            protocol.groups.append(group)
            continue
        code = strip_comment(text)
        strings = STRING.findall(code)
        if not strings:
            declared_class = CS_CLASS.search(code)
            if language == "csharp" and group is not None and group.dto is None and declared_class:
                group.dto = declared_class[1]
            continue
        endpoint = ENDPOINT.match(strings[0])
        if endpoint and len(strings) == 1:
            path, _, query = endpoint[2].partition("?")
            names = [item.split("=", 1)[0] for item in query.split("&") if item]
            declared = Endpoint(endpoint[1], normalise(path), names, n)
            if language == "csharp":
                typed = CS_ENDPOINT.search(code)
                if typed is None:
                    protocol.problems.append(
                        f"line {n}: an endpoint is `new Endpoint<Req, Resp>(...)`"
                    )
                else:
                    declared.request_dto, declared.response_dto = typed[1], typed[2]
            protocol.endpoints.append(declared)
            continue
        if group is None:
            protocol.problems.append(f"line {n}: {strings} is in no @fields or @values group")
            continue
        if language == "mql5":
            define = MQL_DEFINE.match(code)
            if define is None:
                protocol.problems.append(f'line {n}: expected #define NAME "..."')
                continue
            group.macros.append(define[1])
            group.names.append((n, define[2]))
            continue
        pattern = CS_MEMBER if group.kind == "fields" else CS_CONST
        names = pattern.findall(code)
        if len(names) != len(strings):
            protocol.problems.append(f"line {n}: a string that is not a declared {group.kind[:-1]}")
        group.names += [(n, name) for name in names]
    for n, text in block:
        if found_unnamed_member(strip_comment(text)):
            protocol.problems.append(f"line {n}: [DataMember] without Name (the C# name is sent)")
    return protocol


def found_unnamed_member(code: str) -> bool:
    return re.search(r"\[DataMember(?!\(\s*Name\s*=)", code) is not None


# ---- the checks ---------------------------------------------------------------------------


def check_declarations(protocol: Protocol, api: Api) -> Iterator[str]:
    """Each declared endpoint, field and value exists in the API where the client says."""
    yield from protocol.problems
    if not protocol.endpoints:
        yield "no endpoint declared"
    declared = {(e.method, e.path) for e in protocol.endpoints}
    for e in protocol.endpoints:
        key = (e.method, e.path)
        if key not in api.operations:
            yield f"line {e.line}: no endpoint {e.method} {e.path} in the API"
            continue
        operation, _ = api.operations[key]
        query = {p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"}
        for name in e.query:
            if name not in query:
                yield f"line {e.line}: {e.method} {e.path} has no query parameter {name!r}"
    for group in protocol.groups:
        for where in group.locations:
            if where.method is not None and (where.method, where.path) not in declared:
                yield f"line {group.line}: {where.text!r}: an endpoint the client does not declare"
            yield from _check_group(group, where, api)
    yield from _check_dtos(protocol)


def _check_group(group: Group, where: Location, api: Api) -> Iterator[str]:
    if group.kind == "values" and not where.steps:
        yield f"line {group.line}: @values needs the field whose values follow"
        return
    found = resolve(api, where)
    if isinstance(found, str):
        yield f"line {group.line}: {found}"
        return
    schemas, doc = found
    if group.kind == "values":
        allowed = {
            value
            for schema in schemas
            for branch in _branches(schema, doc)
            for value in [*branch.get("enum", []), branch.get("const")]
            if value is not None
        }
        for n, value in group.names:
            if value not in allowed:
                yield f"line {n}: {value!r} is not a value of {where.text!r} ({sorted(allowed)})"
        return
    branches = [b for schema in schemas for b in _branches(schema, doc) if "properties" in b]
    properties = {name for b in branches for name in b["properties"]}
    for n, name in group.names:
        if name not in properties:
            yield f"line {n}: no field {name!r} at {where.text!r}"
    if where.part == "request":
        names = {name for _, name in group.names}
        for b in branches:
            for name in b.get("required", []):
                if name not in names:
                    yield f"line {group.line}: {where.text!r} requires {name!r}, not declared"


def _check_dtos(protocol: Protocol) -> Iterator[str]:
    """C#: an endpoint's request and answer types are the DTOs declared for it."""
    by_dto = {g.dto: g for g in protocol.groups if g.dto}
    for e in protocol.endpoints:
        for dto, part in ((e.request_dto, "request"), (e.response_dto, "response")):
            if dto is None or (dto == "NoBody" and part == "request"):
                continue
            group = by_dto.get(dto)
            if group is None:
                yield f"line {e.line}: {dto} is no DTO of the protocol block"
                continue
            if not any(
                (w.method, w.path, w.part, w.steps) == (e.method, e.path, part, ())
                for w in group.locations
            ):
                yield f"line {e.line}: {dto} is not declared as the {part} of {e.method} {e.path}"


def check_usage(sources: list[str], protocol: Protocol, language: str) -> Iterator[str]:
    """Outside the block no path, no JSON key and no DTO: only what the block declares."""
    writers = protocol.key_macros("request") | {HELPER_PARAMETER}
    readers = protocol.key_macros("response") | {HELPER_PARAMETER}
    values = {macro for g in protocol.groups if g.kind == "values" for macro in g.macros}
    used: set[str] = set()
    for index, source in enumerate(sources):
        if index == 0:
            _, lines, _ = split_block(source)
        else:
            lines = list(enumerate(source.splitlines(), start=1))
        for n, text in lines:
            code = strip_comment(text)
            where = f"file {index} line {n}"
            for literal in STRING.findall(code):
                if "/api/" in literal:
                    yield f"{where}: a path outside the protocol block: {literal!r}"
            if JSON_KEY_LITERAL.search(code):
                yield f"{where}: a JSON key written by hand: {code.strip()!r}"
            if language == "csharp" and re.search(
                r"\[DataMember|\[DataContract|new\s+Endpoint<", code
            ):
                yield f"{where}: DTOs and endpoints belong in the protocol block"
        if language == "mql5":
            # Calls may span lines: their arguments are read from the whole text.
            whole = "\n".join(strip_comment(t) for _, t in lines)
            for pattern, position, allowed, what in (
                (MQL_WRITER, 0, writers, "writes key {}, not a request field of the block"),
                (MQL_READER, 1, readers, "reads key {}, not an answer field of the block"),
            ):
                for match in pattern.finditer(whole):
                    arguments = call_arguments(whole, match.end())
                    if len(arguments) <= position or DECLARED_PARAMETER.match(arguments[0]):
                        continue  # the helper's own declaration (`const string json, ...`)
                    used.add(arguments[position])
                    if arguments[position] not in allowed:
                        yield f"file {index}: " + what.format(arguments[position])
            used |= set(re.findall(r"\b\w+\b", whole)) & values
    if language == "mql5":
        # The block must not claim more than the code does either.
        for g in protocol.groups:
            for macro, (n, name) in zip(g.macros, g.names, strict=True):
                if macro not in used:
                    yield f"line {n}: {macro} ({name!r}) is declared but never used"


def call_arguments(text: str, start: int) -> list[str]:
    """The top-level arguments of the call whose ``(`` ends just before ``start``."""
    arguments, depth, current, in_string = [], 0, "", False
    for i in range(start, len(text)):
        c = text[i]
        if in_string:
            in_string = not (c == '"' and text[i - 1] != "\\")
        elif c == '"':
            in_string = True
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            if depth == 0:
                return [*arguments, current.strip()]
            depth -= 1
        elif c == "," and depth == 0:
            arguments.append(current.strip())
            current = ""
            continue
        current += c
    return arguments


def client_problems(
    files: tuple[str, ...], api: Api, overrides: dict[int, str] | None = None
) -> list[str]:
    sources = [(CLIENTS / name).read_text(encoding="utf-8") for name in files]
    for index, text in (overrides or {}).items():
        sources[index] = text
    language = "csharp" if files[0].endswith(".cs") else "mql5"
    protocol = parse_protocol(sources[0], language)
    return [
        *check_declarations(protocol, api),
        *check_usage(sources, protocol, language),
    ]


# ---- tests --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def api() -> Api:
    # No lifespan runs: building the app and its OpenAPI connects to nothing.
    from forward_test_service.config import Settings as ForwardSettings
    from forward_test_service.main import create_app as forward_app
    from market_data_service.config import Settings as MarketSettings
    from market_data_service.main import create_app as market_app

    return Api.of(forward_app(ForwardSettings()).openapi(), market_app(MarketSettings()).openapi())


@pytest.mark.parametrize("files", [MT5_FILES, NINJATRADER_FILES], ids=["mt5", "ninjatrader"])
def test_client_uses_only_paths_fields_and_values_of_the_api(
    files: tuple[str, ...], api: Api
) -> None:
    assert client_problems(files, api) == []


@pytest.mark.parametrize("files", [MT5_FILES, NINJATRADER_FILES], ids=["mt5", "ninjatrader"])
def test_client_declares_the_whole_agent_protocol(files: tuple[str, ...], api: Api) -> None:
    source = (CLIENTS / files[0]).read_text(encoding="utf-8")
    protocol = parse_protocol(source, "csharp" if files[0].endswith(".cs") else "mql5")
    assert {(e.method, e.path) for e in protocol.endpoints} == {
        ("POST", "/api/agents/{}/heartbeat"),
        ("GET", "/api/agents/{}/commands"),
        ("POST", "/api/agents/{}/commands/{}/ack"),
        ("POST", "/api/agents/{}/trades/sync"),
        ("POST", "/api/market/bars"),
    }
    kinds = {
        name
        for g in protocol.groups
        if g.kind == "values" and any(w.steps[-1:] == ("kind",) for w in g.locations)
        for _, name in g.names
    }
    assert kinds == {"close_all", "close", "modify", "open", "info"}


MT5_HEARTBEAT = "// @fields POST /api/agents/{id}/heartbeat request\n"
NT_HEARTBEAT = '[DataMember(Name = "balance")]'
ANCHOR = "private AlgoTradeAgent _agent;"


def _plant(files: tuple[str, ...], index: int, old: str, new: str) -> dict[int, str]:
    text = (CLIENTS / files[index]).read_text(encoding="utf-8")
    assert old in text, f"the self-check's anchor {old!r} is gone from {files[index]}"
    return {index: text.replace(old, new, 1)}


@pytest.mark.parametrize(
    ("files", "index", "old", "new", "expected"),
    [
        (MT5_FILES, 0, MT5_HEARTBEAT, MT5_HEARTBEAT + '#define AT_HB_BOGUS "bogus"\n', "'bogus'"),
        (MT5_FILES, 0, '"balance"', '"balance_"', "requires 'balance'"),
        (MT5_FILES, 0, MT5_HEARTBEAT, MT5_HEARTBEAT + '#define AT_HB_X "margin"\n', "AT_HB_X"),
        (MT5_FILES, 0, "/trades/sync", "/trades/synch", "/trades/synch"),
        (MT5_FILES, 0, "?wait=", "?wiat=", "'wiat'"),
        (MT5_FILES, 0, '"close_all"', '"flatten"', "'flatten'"),
        (MT5_FILES, 1, "void OnTick()", 'void OnTick() { w.Num("equity", 1); }', '"equity"'),
        (MT5_FILES, 1, "void OnTick()", "void OnTick() { w.Num(AT_HBA_STATE, 1); }", "AT_HBA"),
        (NINJATRADER_FILES, 0, NT_HEARTBEAT, NT_HEARTBEAT.replace("balance", "bogus"), "'bogus'"),
        (NINJATRADER_FILES, 0, "?wait=", "?wiat=", "'wiat'"),
        (
            NINJATRADER_FILES,
            0,
            "new Endpoint<TradeSync,",
            "new Endpoint<HeartbeatBody,",
            "HeartbeatBody",
        ),
        (NINJATRADER_FILES, 1, ANCHOR, ANCHOR + ' string _x = "/api/agents/{0}/x";', "/api/"),
    ],
    ids=[
        "mt5-bogus-field",
        "mt5-required-field-missing",
        "mt5-declared-but-unused",
        "mt5-bogus-path",
        "mt5-bogus-query",
        "mt5-bogus-value",
        "mt5-literal-key",
        "mt5-answer-field-written",
        "nt-bogus-field",
        "nt-bogus-query",
        "nt-wrong-dto",
        "nt-path-outside-block",
    ],
)
def test_the_check_fails_on_a_planted_mistake(
    files: tuple[str, ...], index: int, old: str, new: str, expected: str, api: Api
) -> None:
    """Guards the checks above against passing vacuously."""
    problems = client_problems(files, api, _plant(files, index, old, new))
    assert any(expected in p for p in problems), problems
