"""Rows and plans as response bodies."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from algotrade.engine import Plan
from algotrade.errors import Conflict
from strategy_service.authoring import Saved
from strategy_service.models import Strategy, StrategyVersion
from strategy_service.schemas import (
    ParameterPublic,
    PlanSummary,
    StrategyDetailPublic,
    StrategyPublic,
    TemplatePublic,
    VersionPublic,
)
from strategy_service.templates import Template


def strategy_public(strategy: Strategy, plan_id: str | None) -> StrategyPublic:
    return StrategyPublic(
        id=strategy.id,
        owner_id=strategy.owner_id,
        name=strategy.name,
        description=strategy.description,
        current_version=strategy.current_version,
        plan_id=plan_id,
        draft=plan_id is None,
        template=strategy.template_key,
        created_at=strategy.created_at,
        updated_at=strategy.updated_at,
    )


def strategy_detail(strategy: Strategy, version: StrategyVersion) -> StrategyDetailPublic:
    return StrategyDetailPublic(
        **strategy_public(strategy, version.plan_id).model_dump(), graph=version.graph
    )


def saved_detail(saved: Saved) -> StrategyDetailPublic:
    return strategy_detail(saved.strategy, saved.version)


def version_public(version: StrategyVersion) -> VersionPublic:
    return VersionPublic(
        strategy_id=version.strategy_id,
        n=version.n,
        plan_id=version.plan_id,
        created_at=version.created_at,
        created_by=version.created_by,
        graph=version.graph,
        problems=version.problems,
    )


def runnable_plan_id(version: StrategyVersion) -> str:
    """The version's plan id; a draft (no plan) is refused with its problems (409)."""
    if version.plan_id is None:
        raise Conflict(
            f"version {version.n} of strategy {version.strategy_id} is a draft migrated from "
            "Beta1 that does not validate; fix it in the editor and save it as a new version",
            errors=list(version.problems or []),
        )
    return version.plan_id


def plan_summary(plan: Plan, graph: Mapping[str, Any]) -> PlanSummary:
    """`Plan.summary` with each parameter's ``doc`` from the graph it was compiled from.

    (The engine's plan keeps a tunable's range and value but not its doc.)
    """
    summary = PlanSummary.model_validate(plan.summary())
    declared = graph.get("parameters")
    if isinstance(declared, Mapping):
        for name, parameter in summary.parameters.items():
            spec = declared.get(name)
            if isinstance(spec, Mapping) and isinstance(spec.get("doc"), str):
                parameter.doc = spec["doc"]
    return summary


def template_public(template: Template, plan: Plan) -> TemplatePublic:
    graph = template.graph_copy()
    return TemplatePublic(
        key=template.key,
        name=template.name,
        summary=template.summary,
        doc=template.doc,
        tags=list(template.tags),
        parameters={
            name: ParameterPublic.model_validate(spec)
            for name, spec in graph.get("parameters", {}).items()
        },
        graph=graph,
        plan=plan_summary(plan, graph),
    )
