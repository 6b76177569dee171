"""The strategy service's domain objects, built once in the lifespan and handed to routes."""

from __future__ import annotations

from dataclasses import dataclass

from strategy_service.api.cacheable import Published
from strategy_service.authoring import Authoring
from strategy_service.config import Settings
from strategy_service.plan_cache import PlanCache
from strategy_service.templates import TemplateCatalog


@dataclass(frozen=True)
class StrategyServices:
    """What the routes use: authoring (the write path), the compiled-plan cache, the template
    catalog and the published, cacheable documents (node types, graph schema, templates)."""

    settings: Settings
    authoring: Authoring
    plans: PlanCache
    templates: TemplateCatalog
    published: Published
