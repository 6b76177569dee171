"""Platform conventions every service keeps, checked on the real apps."""

from __future__ import annotations

import importlib
import importlib.util
import types
import typing
from collections.abc import Iterator, Mapping, Sequence, Set
from typing import Annotated, Any, Literal, Union

import pytest
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from starlette.routing import BaseRoute

from algotrade.strict_json import StrictJSONRoute

PACKAGES = [
    "api_gateway",
    "strategy_service",
    "market_data_service",
    "backtesting_service",
    "forward_test_service",
    "notification_service",
    "analytics_service",
]


def all_routes(routes: list[BaseRoute]) -> Iterator[BaseRoute]:
    """Every route, including those of included routers (FastAPI nests them unflattened)."""
    for route in routes:
        original = getattr(route, "original_router", None)
        if original is not None:
            yield from all_routes(original.routes)
        else:
            yield route


def app_routes(package: str) -> list[BaseRoute]:
    main = importlib.import_module(f"{package}.main")
    config = importlib.import_module(f"{package}.config")
    return list(all_routes(main.create_app(config.Settings()).routes))


@pytest.mark.parametrize("package", PACKAGES)
def test_every_route_with_a_body_parses_json_strictly(package: str) -> None:
    """NaN, Infinity, NUL and deep nesting must be a 400 on every endpoint, not a 500 later."""
    loose = [
        f"{sorted(route.methods)} {route.path}"
        for route in app_routes(package)
        if isinstance(route, APIRoute)
        and route.body_field is not None
        and not isinstance(route, StrictJSONRoute)
    ]
    assert not loose, f"build these routers with algotrade.strict_json.api_router: {loose}"


@pytest.mark.parametrize("package", PACKAGES)
def test_every_service_has_probes_and_metrics(package: str) -> None:
    paths = {getattr(r, "path", None) for r in app_routes(package)}
    assert {"/healthz", "/readyz", "/metrics"} <= paths


def test_the_route_walk_sees_a_loose_router() -> None:
    """Guards the check above against passing vacuously."""
    from fastapi import APIRouter, FastAPI
    from pydantic import BaseModel

    class Body(BaseModel):
        x: int

    loose = APIRouter()

    @loose.post("/loose")
    async def post(body: Body) -> None:
        return None

    outer = APIRouter()
    outer.include_router(loose)
    app = FastAPI()
    app.include_router(outer)
    found = [r for r in all_routes(app.routes) if isinstance(r, APIRoute) and r.path == "/loose"]
    assert len(found) == 1
    assert not isinstance(found[0], StrictJSONRoute)


def unbounded_integers(openapi: dict[str, Any]) -> list[str]:
    """Every integer a client can send (path, query, header, body) that lacks a lower or an
    upper bound: such a value can overflow int64 in PostgreSQL and turn into a 500."""
    components = openapi.get("components", {}).get("schemas", {})
    found: list[str] = []

    def walk(schema: Any, where: str, seen: frozenset[str]) -> None:
        if not isinstance(schema, dict):
            return
        ref = schema.get("$ref")
        if isinstance(ref, str):
            name = ref.rsplit("/", 1)[-1]
            if name not in seen and name in components:
                walk(components[name], f"{where}<{name}>", seen | {name})
            return
        if schema.get("type") == "integer":
            low = "minimum" in schema or "exclusiveMinimum" in schema
            high = "maximum" in schema or "exclusiveMaximum" in schema
            if not (low and high):
                found.append(where)
        for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
            for k, sub in enumerate(schema.get(key, [])):
                walk(sub, f"{where}.{key}[{k}]", seen)
        for name, sub in schema.get("properties", {}).items():
            walk(sub, f"{where}.{name}", seen)
        for key in ("items", "additionalProperties"):
            walk(schema.get(key), f"{where}[]", seen)

    for path, item in openapi.get("paths", {}).items():
        for method, operation in item.items():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                where = f"{method.upper()} {path} {parameter.get('in')}:{parameter.get('name')}"
                walk(parameter.get("schema"), where, frozenset())
            content = operation.get("requestBody", {}).get("content", {})
            for media, body in content.items():
                walk(body.get("schema"), f"{method.upper()} {path} body({media})", frozenset())
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_every_integer_input_has_explicit_bounds(package: str) -> None:
    main = importlib.import_module(f"{package}.main")
    config = importlib.import_module(f"{package}.config")
    openapi = main.create_app(config.Settings()).openapi()
    assert unbounded_integers(openapi) == []


class _Inner(BaseModel):
    n: int = Field(ge=0)


class _Body(BaseModel):
    bounded: int = Field(ge=0, le=10)
    inner: list[_Inner]


def test_the_integer_walk_finds_an_unbounded_query_and_body_field() -> None:
    """Guards the check above against passing vacuously."""
    from fastapi import FastAPI, Query

    app = FastAPI()

    @app.post("/x")
    async def post(body: _Body, offset: int = Query(0, ge=0)) -> None:
        return None

    assert unbounded_integers(app.openapi()) == [
        "POST /x query:offset",
        "POST /x body(application/json)<_Body>.inner[]<_Inner>.n",
    ]


@pytest.mark.parametrize("package", PACKAGES)
def test_every_service_openapi_document_is_valid_and_every_ref_resolves(package: str) -> None:
    from openapi_spec_validator import validate

    main = importlib.import_module(f"{package}.main")
    config = importlib.import_module(f"{package}.config")
    document = main.create_app(config.Settings()).openapi()
    validate(document)  # raises naming the first violation
    refs: list[str] = []

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref" and isinstance(value, str):
                    refs.append(value)
                else:
                    collect(value)
        elif isinstance(node, list):
            for item in node:
                collect(item)

    collect(document)
    schemas = document.get("components", {}).get("schemas", {})
    dangling = {
        ref
        for ref in refs
        if not (ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[-1] in schemas)
    }
    assert dangling == set()


# -- strict request bodies ---------------------------------------------------------------------

# Values of the wrong JSON type for each scalar a body declares. A body field must reject every
# one (or keep it as it came, as a union with a member of that type does): a JSON "100" or
# true quietly becoming the number 100 or 1 is the coercion the platform refuses.
WRONG_JSON_TYPES: dict[type, tuple[Any, ...]] = {
    int: ("1", True, 1.0, 1.5),
    float: ("1", "1.5", True),
    bool: ("true", 1, 0.0),
    str: (1, 1.5, True),
}


# Errors pydantic raises only once a value has become a number: the value was coerced.
NUMBER_BOUND_ERRORS = frozenset(
    {"greater_than", "greater_than_equal", "less_than", "less_than_equal", "multiple_of"}
    | {"finite_number"}
)


def scalar_leaves(annotation: Any, wrap: Any = lambda value: value) -> Iterator[tuple[type, Any]]:
    """Each int/float/bool/str an annotation holds, with how to place a value there (inside the
    lists and dict values around it). Nested models are walked as models of their own."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Annotated:
        yield from scalar_leaves(args[0], wrap)
    elif origin in (Union, types.UnionType):
        for arg in args:
            yield from scalar_leaves(arg, wrap)
    elif isinstance(origin, type) and issubclass(origin, Sequence | Set):
        for arg in args:
            if arg is not Ellipsis:
                yield from scalar_leaves(arg, lambda value, wrap=wrap: wrap([value]))
    elif isinstance(origin, type) and issubclass(origin, Mapping):
        if len(args) == 2:
            yield from scalar_leaves(args[1], lambda value, wrap=wrap: wrap({"k": value}))
    elif origin is Literal or annotation is Any:
        return
    elif annotation in WRONG_JSON_TYPES:
        yield annotation, wrap


def nested_models(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in typing.get_args(annotation):
        yield from nested_models(arg)


def body_models(
    routes: list[BaseRoute], namespace: Mapping[str, Any]
) -> dict[type[BaseModel], str]:
    """Every pydantic model a route's JSON body reaches, each with the route that first did.

    A body parsed by hand is documented with ``openapi_extra`` and
    `algotrade.strict_json.body_schema`; its model is found by the schema's title among
    ``namespace`` (the service's ``schemas`` module), and must be as strict as the parser.
    """
    found: dict[type[BaseModel], str] = {}

    def visit(model: type[BaseModel], where: str) -> None:
        if model in found:
            return
        found[model] = where
        for field in model.model_fields.values():
            for nested in nested_models(field.rebuild_annotation()):
                visit(nested, where)

    for route in routes:
        if isinstance(route, APIRoute) and route.body_field is not None:
            where = f"{sorted(route.methods)} {route.path}"
            for model in nested_models(route.body_field.field_info.annotation):
                visit(model, where)
        if isinstance(route, APIRoute) and route.openapi_extra:
            content = route.openapi_extra.get("requestBody", {}).get("content", {})
            for media, body in content.items():
                if "json" not in media:
                    continue
                title = body.get("schema", {}).get("title")
                model = namespace.get(title) if isinstance(title, str) else None
                assert isinstance(model, type) and issubclass(model, BaseModel), (
                    f"{sorted(route.methods)} {route.path}: no model {title!r} in its schemas"
                )
                visit(model, f"{sorted(route.methods)} {route.path}")
    return found


def coercing_fields(model: type[BaseModel]) -> list[str]:
    """The fields of ``model`` that turn a JSON value of the wrong type into their own type.

    Each field is validated alone, as the route validates it inside ``model``: with the field's
    own constraints and strictness, and the model's config (a model-level ``strict``
    included). FastAPI validates bodies in python mode after parsing JSON, and so does this.
    """
    found: list[str] = []
    for name, field in model.model_fields.items():
        annotation = field.rebuild_annotation()
        leaves = list(scalar_leaves(annotation))
        if not leaves:  # e.g. a nested model, checked as a model of its own
            continue
        config = ConfigDict(**{k: v for k, v in model.model_config.items() if k == "strict"})
        adapter: TypeAdapter[Any] = TypeAdapter(annotation, config=config or None)
        for kind, wrap in leaves:
            for wrong in WRONG_JSON_TYPES[kind]:
                try:
                    coerced = kind in _leaf_types(adapter.validate_python(wrap(wrong)))
                except ValidationError as error:
                    # A bound the coerced number missed still means it was coerced.
                    coerced = bool({e["type"] for e in error.errors()} & NUMBER_BOUND_ERRORS)
                if coerced:
                    found.append(f"{model.__name__}.{name} ({kind.__name__} <- {wrong!r})")
    return found


def _leaf_types(value: Any) -> set[type]:
    """The types of the scalars in ``value``, through the lists and dicts around them."""
    if isinstance(value, list | set | frozenset | tuple):
        return set().union(*map(_leaf_types, value))
    if isinstance(value, dict):
        return set().union(*map(_leaf_types, value.values()))
    return {type(value)}


@pytest.mark.parametrize("package", PACKAGES)
def test_every_request_body_field_refuses_values_of_another_json_type(package: str) -> None:
    """No string or bool becomes a number, no number a string, no float an int: strict numeric
    and bool types (pydantic ``StrictInt``/``StrictFloat``/``StrictBool``) in every body."""
    has_schemas = importlib.util.find_spec(f"{package}.schemas") is not None
    schemas = vars(importlib.import_module(f"{package}.schemas")) if has_schemas else {}
    models = body_models(app_routes(package), schemas)
    loose = [
        f"{where}: {field}" for model, where in models.items() for field in coercing_fields(model)
    ]
    assert not loose, "use strict types for these request body fields:\n" + "\n".join(loose)


class _LaxLeaf(BaseModel):
    ratio: float | None = None
    flags: dict[str, list[bool]] = Field(default_factory=dict)


class _LaxBody(BaseModel):
    model_config = ConfigDict(strict=True)

    count: Annotated[int, Field(ge=0, strict=False)] = 0
    strict_count: int = 0
    bounded: Annotated[int, Field(ge=2, le=5, strict=False)] = 2
    label: str | int = ""
    leaves: list[_LaxLeaf] = Field(default_factory=list)
    leaf: _LaxLeaf | None = None


def test_the_strict_body_walk_finds_lax_fields_in_nested_models() -> None:
    """Guards the check above against passing vacuously."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.post("/x")
    async def post(body: _LaxBody | None = None) -> None:
        return None

    @app.post(
        "/by-hand",
        openapi_extra={
            "requestBody": {"content": {"application/json": {"schema": {"title": "_LaxLeaf"}}}}
        },
    )
    async def by_hand() -> None:
        return None

    models = body_models(list(all_routes(app.routes)), {"_LaxLeaf": _LaxLeaf})
    assert models == {_LaxBody: "['POST'] /x", _LaxLeaf: "['POST'] /x"}
    by_hand_only = [r for r in all_routes(app.routes) if getattr(r, "path", "") == "/by-hand"]
    assert body_models(by_hand_only, {"_LaxLeaf": _LaxLeaf}) == {_LaxLeaf: "['POST'] /by-hand"}
    assert coercing_fields(_LaxBody) == [
        "_LaxBody.count (int <- '1')",
        "_LaxBody.count (int <- True)",
        "_LaxBody.count (int <- 1.0)",
        "_LaxBody.bounded (int <- '1')",
        "_LaxBody.bounded (int <- True)",
        "_LaxBody.bounded (int <- 1.0)",
    ]
    assert coercing_fields(_LaxLeaf) == [
        "_LaxLeaf.ratio (float <- '1')",
        "_LaxLeaf.ratio (float <- '1.5')",
        "_LaxLeaf.ratio (float <- True)",
        "_LaxLeaf.flags (bool <- 'true')",
        "_LaxLeaf.flags (bool <- 1)",
        "_LaxLeaf.flags (bool <- 0.0)",
    ]


# ----------------------------------------------------------------------------- layering

TOOLS = ("algotrade_devstack", "algotrade_testkit")


def imported_roots(package: str) -> dict[str, set[str]]:
    """Top-level module names each source file of ``package`` imports (absolute imports)."""
    import ast
    from pathlib import Path

    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.submodule_search_locations
    roots: dict[str, set[str]] = {}
    for root in spec.submodule_search_locations:
        for path in Path(root).rglob("*.py"):
            names: set[str] = set()
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names.add(node.module.split(".")[0])
            roots[str(path)] = names
    return roots


def test_shared_imports_no_service_and_no_dev_tool() -> None:
    for path, names in imported_roots("algotrade").items():
        assert not names & {*PACKAGES, *TOOLS}, (
            f"{path} imports {sorted(names & {*PACKAGES, *TOOLS})}"
        )


@pytest.mark.parametrize("package", PACKAGES)
def test_services_import_no_other_service_and_no_dev_tool(package: str) -> None:
    forbidden = {*PACKAGES, *TOOLS} - {package}
    for path, names in imported_roots(package).items():
        assert not names & forbidden, f"{path} imports {sorted(names & forbidden)}"


# ----------------------------------------------------------------------------- bars and time

# The one bar-column type and the one time module (issue 10): every boundary converts through
# them, so a second set of OHLCV arrays or a hand-written epoch conversion is a regression.
BAR_COLUMNS_TYPE = ("algotrade/bars.py", "Bars")
TIME_MODULE = "algotrade/epoch.py"
# Files not yet converted, each with the reason; shrink this, never grow it.
RAW_TIME_ALLOWED = {
    # The live engine and the forward-test service are being written in parallel; their
    # conversions move to algotrade.epoch when that work lands.
    "algotrade/simulation/config.py",
    "forward_test_service/api/views.py",
    "forward_test_service/worker.py",
}
PRICE_FIELDS = frozenset({"open", "high", "low", "close"})
RAW_TIME_CALLS = frozenset({"fromtimestamp", "utcfromtimestamp", "timestamp"})


def source_files() -> Iterator[tuple[str, str]]:
    """(path relative to its ``src`` folder, text) of every shared, service and tool source."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    for src in sorted([*root.glob("*/src"), *root.glob("tools/*/src")]):
        for path in sorted(src.rglob("*.py")):
            yield path.relative_to(src).as_posix(), path.read_text()


def bar_column_classes(text: str) -> list[str]:
    """Classes whose annotated fields include open/high/low/close as arrays."""
    import ast

    found = []
    for node in ast.walk(ast.parse(text)):
        if not isinstance(node, ast.ClassDef):
            continue
        arrays = {
            item.target.id
            for item in node.body
            if isinstance(item, ast.AnnAssign)
            and isinstance(item.target, ast.Name)
            and any(word in ast.unparse(item.annotation) for word in ("Array", "ndarray"))
        }
        if arrays >= PRICE_FIELDS:
            found.append(node.name)
    return found


def raw_time_conversions(text: str) -> list[str]:
    """Calls of ``datetime.fromtimestamp``/``utcfromtimestamp`` or ``<datetime>.timestamp()``,
    by line (``time.time()`` and ``loop.time()`` are clocks, not conversions)."""
    import ast

    return [
        f"line {node.lineno}: {ast.unparse(node)[:60]}"
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in RAW_TIME_CALLS
        # pyarrow's pa.timestamp("ms") is a type, not a conversion: .timestamp() takes nothing.
        and (node.func.attr != "timestamp" or not (node.args or node.keywords))
    ]


def test_bars_travel_as_one_column_type() -> None:
    offenders = [
        f"{path}: {name}"
        for path, text in source_files()
        for name in bar_column_classes(text)
        if (path, name) != BAR_COLUMNS_TYPE
    ]
    assert not offenders, f"hold OHLCV columns in algotrade.bars.Bars, not {offenders}"


def test_time_is_converted_only_in_the_time_module() -> None:
    offenders = [
        f"{path} {hit}"
        for path, text in source_files()
        if path != TIME_MODULE and path not in RAW_TIME_ALLOWED
        for hit in raw_time_conversions(text)
    ]
    assert not offenders, f"convert through algotrade.epoch instead: {offenders}"


def test_the_bar_and_time_walks_find_what_they_forbid() -> None:
    """Guards the two checks above against passing vacuously."""
    sample = """
from dataclasses import dataclass
import numpy.typing as npt

@dataclass
class Candles:
    ts: npt.NDArray[np.int64]
    open: npt.NDArray[np.float64]
    high: npt.NDArray[np.float64]
    low: npt.NDArray[np.float64]
    close: npt.NDArray[np.float64]

class OneBar:
    open: float
    high: float
    low: float
    close: float

def ms(moment):
    return int(moment.timestamp() * 1000), datetime.fromtimestamp(0, UTC), time.time()
"""
    assert bar_column_classes(sample) == ["Candles"]
    assert [hit.split(":")[0] for hit in raw_time_conversions(sample)] == ["line 20", "line 20"]
    files = dict(source_files())
    assert bar_column_classes(files["algotrade/bars.py"]) == ["Bars"]
    assert raw_time_conversions(files[TIME_MODULE]) == []  # the module itself does it exactly
