"""Strategies of the calling user: CRUD, versions, validation and compilation.

Another user's strategy, a deleted one and one that never existed all answer 404 alike.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from anyio import to_thread
from fastapi import Query
from starlette.responses import Response

from algotrade.engine import GraphInvalid
from algotrade.errors import NotFound
from algotrade.service import SessionDep
from algotrade.strict_json import api_router
from strategy_service import repository
from strategy_service.api.deps import (
    IfMatchDep,
    ReaderDep,
    ServicesDep,
    StrategyIdDep,
    WriterDep,
    etag,
)
from strategy_service.api.presenters import (
    plan_summary,
    runnable_plan_id,
    saved_detail,
    strategy_detail,
    strategy_public,
    version_public,
)
from strategy_service.schemas import (
    MAX_VERSION,
    CompileRequest,
    CompileResult,
    ListSort,
    ProblemPublic,
    StrategiesPublic,
    StrategyCreate,
    StrategyDetailPublic,
    StrategyUpdate,
    ValidateRequest,
    ValidationReport,
    VersionNumber,
    VersionPublic,
    VersionsPublic,
    VersionSummaryPublic,
)

router = api_router(prefix="/api/strategies", tags=["strategies"])

MAX_OFFSET = 1_000_000

Limit = Annotated[int | None, Query(ge=1, le=100, description="page size (default 20)")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]

INVALID_GRAPH: dict[int | str, dict[str, Any]] = {
    422: {"description": "invalid graph: `errors` lists every engine problem"}
}


@router.get("", response_model=StrategiesPublic, summary="Your strategies, one page")
async def list_strategies(
    principal: ReaderDep,
    session: SessionDep,
    services: ServicesDep,
    limit: Limit = None,
    offset: Offset = 0,
    q: Annotated[
        str | None, Query(max_length=200, description="substring of name or description")
    ] = None,
    sort: Annotated[ListSort, Query(description="updated (default), created or name")] = "updated",
) -> StrategiesPublic:
    page = min(limit or services.settings.page_size_default, services.settings.page_size_max)
    rows, total = await repository.list_live(
        session, principal.user_id, q=q or None, sort=sort, limit=page, offset=offset
    )
    return StrategiesPublic(
        data=[strategy_public(strategy, plan_id) for strategy, plan_id in rows],
        count=total,
        limit=page,
        offset=offset,
    )


@router.post(
    "",
    status_code=201,
    response_model=StrategyDetailPublic,
    summary="Create a strategy; its graph becomes version 1",
    responses=INVALID_GRAPH,
)
async def create_strategy(
    body: StrategyCreate, principal: WriterDep, services: ServicesDep, response: Response
) -> StrategyDetailPublic:
    saved = await services.authoring.create(
        owner=principal.user_id, name=body.name, description=body.description, graph=body.graph
    )
    response.headers["ETag"] = etag(saved.strategy.current_version)
    response.headers["Location"] = f"/api/strategies/{saved.strategy.id}"
    return saved_detail(saved)


@router.post(
    "/validate",
    response_model=ValidationReport,
    summary="Validate a graph without saving it (200 whether it is valid or not)",
)
async def validate_graph(
    body: ValidateRequest, principal: ReaderDep, services: ServicesDep
) -> ValidationReport:
    try:
        plan = await services.plans.compile(body.graph)
    except GraphInvalid as exc:
        return ValidationReport(
            valid=False,
            problems=[ProblemPublic.model_validate(p.as_dict()) for p in exc.problems],
        )
    return ValidationReport(valid=True, problems=[], summary=plan_summary(plan, body.graph))


@router.get(
    "/{strategy_id}",
    response_model=StrategyDetailPublic,
    summary="A strategy with its current graph",
)
async def get_strategy(
    strategy_id: StrategyIdDep, principal: ReaderDep, session: SessionDep, response: Response
) -> StrategyDetailPublic:
    found = await repository.get_live_with_current(session, principal.user_id, strategy_id)
    if found is None:
        raise NotFound(f"there is no strategy {strategy_id}")
    strategy, version = found
    response.headers["ETag"] = etag(strategy.current_version)
    return strategy_detail(strategy, version)


@router.patch(
    "/{strategy_id}",
    response_model=StrategyDetailPublic,
    summary="Rename, redescribe, or save a new graph version (optimistic concurrency)",
    responses={
        409: {"description": "expected_version / If-Match is not the current version"},
        **INVALID_GRAPH,
    },
)
async def update_strategy(
    strategy_id: StrategyIdDep,
    body: StrategyUpdate,
    principal: WriterDep,
    services: ServicesDep,
    if_match: IfMatchDep,
    response: Response,
) -> StrategyDetailPublic:
    saved = await services.authoring.update(
        owner=principal.user_id, strategy_id=strategy_id, change=body, if_match=if_match
    )
    response.headers["ETag"] = etag(saved.strategy.current_version)
    return saved_detail(saved)


@router.delete(
    "/{strategy_id}",
    status_code=204,
    summary="Delete a strategy (soft: it answers 404 from now on; its versions stay stored)",
)
async def delete_strategy(
    strategy_id: StrategyIdDep,
    principal: WriterDep,
    services: ServicesDep,
    if_match: IfMatchDep,
) -> Response:
    await services.authoring.delete(
        owner=principal.user_id, strategy_id=strategy_id, if_match=if_match
    )
    return Response(status_code=204)


@router.get(
    "/{strategy_id}/versions",
    response_model=VersionsPublic,
    summary="The strategy's versions, newest first",
)
async def list_versions(
    strategy_id: StrategyIdDep,
    principal: ReaderDep,
    session: SessionDep,
    services: ServicesDep,
    limit: Limit = None,
    offset: Offset = 0,
) -> VersionsPublic:
    if await repository.get_live(session, principal.user_id, strategy_id) is None:
        raise NotFound(f"there is no strategy {strategy_id}")
    page = min(limit or services.settings.page_size_default, services.settings.page_size_max)
    rows, total = await repository.list_versions(session, strategy_id, limit=page, offset=offset)
    return VersionsPublic(
        data=[
            VersionSummaryPublic(n=n, plan_id=plan_id, created_at=created_at, created_by=by)
            for n, plan_id, created_at, by in rows
        ],
        count=total,
        limit=page,
        offset=offset,
    )


@router.get(
    "/{strategy_id}/versions/{n}",
    response_model=VersionPublic,
    summary="One immutable version: its graph, plan id and, on request, its compiled plan",
    responses={409: {"description": "`include=plan` on a draft, which has no plan"}},
)
async def get_version(
    strategy_id: StrategyIdDep,
    n: VersionNumber,
    principal: ReaderDep,
    session: SessionDep,
    services: ServicesDep,
    response: Response,
    include: Annotated[
        Literal["plan"] | None,
        Query(
            description="`plan`: add the compiled plan, from the plan cache (one compilation "
            "per version, however many backtests run it)"
        ),
    ] = None,
) -> VersionPublic:
    if await repository.get_live(session, principal.user_id, strategy_id) is None:
        raise NotFound(f"there is no strategy {strategy_id}")
    version = await repository.get_version(session, strategy_id, n)
    if version is None:
        raise NotFound(f"strategy {strategy_id} has no version {n}")
    public = version_public(version)
    if include == "plan":
        plan_id = runnable_plan_id(version)
        await session.close()  # hand the connection back before a possible compilation
        plan, _ = await services.plans.load(plan_id, version.graph)
        public.plan = plan.to_bytes().decode()
    # A version never changes: its content may be cached for as long as the client likes.
    response.headers["ETag"] = f'"{strategy_id}.{n}{".plan" if include else ""}"'
    response.headers["Cache-Control"] = "private, max-age=31536000, immutable"
    return public


@router.post(
    "/{strategy_id}/compile",
    response_model=CompileResult,
    summary="Compile a version (default: the current one), optionally with other parameters",
    responses={
        409: {"description": "the version is a draft, which has no plan"},
        422: {"description": "unknown parameter or value out of range"},
    },
)
async def compile_strategy(
    strategy_id: StrategyIdDep,
    principal: ReaderDep,
    session: SessionDep,
    services: ServicesDep,
    version: Annotated[
        int | None, Query(ge=1, le=MAX_VERSION, description="version (default: current)")
    ] = None,
    body: CompileRequest | None = None,
) -> CompileResult:
    strategy = await repository.get_live(session, principal.user_id, strategy_id)
    if strategy is None:
        raise NotFound(f"there is no strategy {strategy_id}")
    n = version if version is not None else strategy.current_version
    saved = await repository.get_version(session, strategy_id, n)
    if saved is None:
        raise NotFound(f"strategy {strategy_id} has no version {n}")
    graph, version_plan_id = saved.graph, runnable_plan_id(saved)
    await session.close()  # hand the connection back before the CPU-bound part
    plan, cached = await services.plans.load(version_plan_id, graph)
    overrides = body.parameters if body is not None else {}
    if overrides:
        plan = await to_thread.run_sync(plan.with_params, overrides)
    return CompileResult(
        **plan_summary(plan, graph).model_dump(),
        strategy_id=strategy_id,
        version=n,
        version_plan_id=version_plan_id,
        cached=cached,
    )
