"""Request and response bodies of the strategy API.

Request models forbid unknown fields, so a misspelt field is a 422 rather than silently
ignored. Graphs travel as plain JSON objects here: the engine validates them (every problem at
once) and its JSON Schema is published at ``GET /api/strategies/schema``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StringConstraints,
    model_validator,
)

NAME_MAX_LENGTH = 200
DESCRIPTION_MAX_LENGTH = 4000
MAX_OVERRIDES = 100
MAX_VERSION = 2**31 - 1  # versions are int4 in PostgreSQL


# NUL characters never get here: the shared strict JSON parser and URL check refuse them.
Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=NAME_MAX_LENGTH)
]
Description = Annotated[str, StringConstraints(max_length=DESCRIPTION_MAX_LENGTH)]
ParameterName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
Graph = Annotated[
    dict[str, Any],
    Field(
        description="a strategy graph (nodes, edges, parameters, meta); "
        "see GET /api/strategies/schema",
        json_schema_extra={"example": {"nodes": [], "edges": []}},
    ),
]
Overrides = Annotated[
    dict[ParameterName, StrictInt | StrictFloat],
    Field(max_length=MAX_OVERRIDES, description="tunable name -> value within its range"),
]
VersionNumber = Annotated[int, Field(ge=1, le=MAX_VERSION)]  # a path or query parameter
# In a JSON body a version must be a JSON integer, not "3" or true.
BodyVersionNumber = Annotated[StrictInt, Field(ge=1, le=MAX_VERSION)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- strategies ------------------------------------------------------------------------------


class StrategyCreate(_Request):
    name: Name
    description: Description = ""
    graph: Graph


class StrategyUpdate(_Request):
    """Rename/redescribe, and/or save a new graph version (``graph``).

    ``expected_version`` (or an ``If-Match: "<n>"`` header) makes the update conditional on the
    strategy still being at version ``n``; a mismatch is a 409.
    """

    name: Name | None = None
    description: Description | None = None
    graph: Graph | None = None
    expected_version: BodyVersionNumber | None = None

    @model_validator(mode="after")
    def _no_explicit_nulls(self) -> StrategyUpdate:
        nulls = [f for f in ("name", "description", "graph") if f in self.model_fields_set]
        nulls = [f for f in nulls if getattr(self, f) is None]
        if nulls:
            raise ValueError(f"{', '.join(nulls)} cannot be null; leave the field out instead")
        return self


class StrategyPublic(BaseModel):
    id: str
    owner_id: str
    name: str
    description: str
    current_version: int
    plan_id: str | None = Field(
        description="plan id of the current version; null when it is a draft (see `draft`)"
    )
    draft: bool = Field(
        default=False,
        description="the current version is a draft migrated from Beta1 that does not validate: "
        "it cannot run until a fixed graph is saved as the next version",
    )
    template: str | None = Field(description="key of the template it was made from, if any")
    created_at: datetime
    updated_at: datetime


class StrategyDetailPublic(StrategyPublic):
    graph: dict[str, Any] = Field(description="the graph of the current version")


class StrategiesPublic(BaseModel):
    data: list[StrategyPublic]
    count: int = Field(description="live strategies matching the query, across all pages")
    limit: int
    offset: int


# -- versions --------------------------------------------------------------------------------


class VersionSummaryPublic(BaseModel):
    n: int
    plan_id: str | None = Field(description="null for a draft, which has no plan")
    created_at: datetime
    created_by: str


class VersionPublic(VersionSummaryPublic):
    strategy_id: str
    graph: dict[str, Any]
    problems: list[dict[str, Any]] | None = Field(
        default=None,
        description="a draft's problems (each with `code`, `message` and, where it applies, "
        "`node` and `port`); null for a normal version",
    )
    plan: str | None = Field(
        default=None,
        description="the compiled plan (the engine's serialised form), with ?include=plan: the "
        "backtesting service runs it instead of compiling the graph again",
    )


class VersionsPublic(BaseModel):
    data: list[VersionSummaryPublic]
    count: int
    limit: int
    offset: int


# -- validation and compilation --------------------------------------------------------------


class ValidateRequest(_Request):
    graph: Graph


class ProblemPublic(BaseModel):
    node_id: str | None
    port: str | None
    code: str
    message: str


class ParameterPublic(BaseModel):
    default: int | float = Field(description="the value in effect")
    min: int | float
    max: int | float
    step: int | float | None = None
    doc: str | None = None


class RiskPublic(BaseModel):
    kind: str
    node_id: str
    output: str
    mode: str
    unit: str
    params: dict[str, int | float | str]


class PlanSummary(BaseModel):
    """What a compiled plan needs from its consumers (`Plan.summary`)."""

    plan_id: str
    warmup: int = Field(description="bars before every output is defined")
    parameters: dict[str, ParameterPublic]
    signals: dict[str, list[str]] = Field(description="signal kind -> outputs ('node.signal')")
    risk: dict[str, RiskPublic]
    node_count: int
    step_count: int


class ValidationReport(BaseModel):
    valid: bool
    problems: list[ProblemPublic]
    summary: PlanSummary | None = None


class CompileRequest(_Request):
    parameters: Overrides = Field(default_factory=dict)


class CompileResult(PlanSummary):
    strategy_id: str
    version: int
    version_plan_id: str = Field(
        description="plan id of the version with its saved defaults (differs from plan_id "
        "when parameters were overridden)"
    )
    cached: bool = Field(description="whether the saved plan came from the cache")


# -- templates -------------------------------------------------------------------------------


class TemplatePublic(BaseModel):
    key: str
    name: str
    summary: str
    doc: str
    tags: list[str]
    parameters: dict[str, ParameterPublic]
    graph: dict[str, Any]
    plan: PlanSummary


class TemplatesPublic(BaseModel):
    data: list[TemplatePublic]
    count: int


class TemplateInstantiate(_Request):
    name: Name | None = Field(default=None, description="defaults to the template's name")
    description: Description | None = Field(
        default=None, description="defaults to the template's summary"
    )
    parameters: Overrides = Field(default_factory=dict)


# -- node types ------------------------------------------------------------------------------


class NodeTypesPublic(BaseModel):
    data: list[dict[str, Any]] = Field(description="node types: ports, params, ranges, docs")
    count: int


ListSort = Literal["updated", "created", "name"]
