"""Composition root of the strategy service: builds the app and its domain objects."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.responses import Response

from algotrade.engine import node_types_catalog, strategy_graph_json_schema
from algotrade.problems import problem_response
from algotrade.service import Resources, create_service_app
from strategy_service.api.cacheable import CacheableJSON, Published
from strategy_service.api.presenters import template_public
from strategy_service.api.routes import ROUTERS
from strategy_service.authoring import Authoring
from strategy_service.config import Settings
from strategy_service.models import SCHEMA
from strategy_service.plan_cache import PlanCache, PlanCacheMetrics
from strategy_service.schemas import NodeTypesPublic, TemplatesPublic
from strategy_service.services import StrategyServices
from strategy_service.templates import TemplateCatalog

NAME = "strategy-service"
logger = logging.getLogger(__name__)


def publish(templates: TemplateCatalog) -> Published:
    catalog = node_types_catalog()
    listed = [template_public(t, plan) for t, plan in templates]
    return Published(
        node_types=CacheableJSON.of(NodeTypesPublic(data=catalog, count=len(catalog)).model_dump()),
        graph_schema=CacheableJSON.of(strategy_graph_json_schema()),
        templates=CacheableJSON.of(
            TemplatesPublic(data=listed, count=len(listed)).model_dump(mode="json")
        ),
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def setup(resources: Resources) -> AsyncIterator[StrategyServices]:
        plans = PlanCache(
            resources.redis,
            prefix=settings.redis_prefix,
            ttl_seconds=settings.plan_cache_ttl_seconds,
            timeout_seconds=settings.plan_cache_timeout_seconds,
            retry_seconds=settings.plan_cache_retry_seconds,
            metrics=PlanCacheMetrics(resources.metrics_registry),
        )
        templates = TemplateCatalog()
        yield StrategyServices(
            settings=settings,
            plans=plans,
            templates=templates,
            published=publish(templates),
            authoring=Authoring(
                sessions=resources.require_sessions(),
                producer_name=NAME,
                topic=resources.topics.strategy_events,
                plans=plans,
                relay=resources.relay,
            ),
        )

    app = create_service_app(
        name=NAME,
        settings=settings,
        uses=("postgres", "redis", "kafka"),
        schema=SCHEMA,
        routers=ROUTERS,
        setup=setup,
        body_limits={"/api/strategies": settings.strategy_max_body_bytes},
    )
    for error in (OperationalError, InterfaceError, PoolTimeout, ConnectionError):
        app.add_exception_handler(error, _database_unavailable)
    return app


async def _database_unavailable(request: Request, exc: Exception) -> Response:
    """The database is down or saturated: a 503 the client may retry, not a 500."""
    logger.warning("database unavailable on %s: %s", request.url.path, type(exc).__name__)
    return problem_response(
        503,
        "Dependency unavailable",
        "the strategy store is unavailable; retry shortly",
        code="dependency_unavailable",
    )
