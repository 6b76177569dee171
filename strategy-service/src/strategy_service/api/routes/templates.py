"""Built-in strategy templates: browse them and instantiate one as a strategy of your own."""

from __future__ import annotations

from fastapi import Request
from starlette.responses import Response

from algotrade.strict_json import api_router
from strategy_service.api.deps import (
    ReaderDep,
    ServicesDep,
    WriterDep,
    etag,
)
from strategy_service.api.presenters import saved_detail, template_public
from strategy_service.schemas import (
    StrategyDetailPublic,
    TemplateInstantiate,
    TemplatePublic,
    TemplatesPublic,
)

router = api_router(prefix="/api/strategies/templates", tags=["templates"])


@router.get("", response_model=TemplatesPublic, summary="Every template (ETag-cacheable)")
async def list_templates(request: Request, principal: ReaderDep, services: ServicesDep) -> Response:
    return services.published.templates.response(request)


@router.get("/{key}", response_model=TemplatePublic, summary="One template")
async def get_template(key: str, principal: ReaderDep, services: ServicesDep) -> TemplatePublic:
    template, plan = services.templates.get(key)
    return template_public(template, plan)


@router.post(
    "/{key}/instantiate",
    status_code=201,
    response_model=StrategyDetailPublic,
    summary="Create a strategy from a template with chosen parameter values",
    responses={422: {"description": "unknown parameter or value out of range"}},
)
async def instantiate_template(
    key: str,
    body: TemplateInstantiate,
    principal: WriterDep,
    services: ServicesDep,
    response: Response,
) -> StrategyDetailPublic:
    template, graph = services.templates.instantiate(key, body.parameters)
    saved = await services.authoring.create(
        owner=principal.user_id,
        name=body.name or template.name,
        description=body.description if body.description is not None else template.summary,
        graph=graph,
        template=template.key,
    )
    response.headers["ETag"] = etag(saved.strategy.current_version)
    response.headers["Location"] = f"/api/strategies/{saved.strategy.id}"
    return saved_detail(saved)
