"""Route dependencies: the service's domain objects (one ``ServicesDep``), scoped principals
and the analysis options every report endpoint takes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query

from algotrade.auth import CurrentPrincipal, Principal
from algotrade.errors import ValidationFailed
from algotrade.service import services_dependency
from analytics_service.analysis import Options
from analytics_service.services import Analytics


async def reader(principal: CurrentPrincipal) -> Principal:
    principal.require_scope("analytics:read")
    return principal


async def writer(principal: CurrentPrincipal) -> Principal:
    principal.require_scope("analytics:write")
    return principal


async def options(
    confidence: Annotated[
        list[float] | None,
        Query(description="VaR confidence levels (each in [0.5, 0.999]; default 0.95 and 0.99)"),
    ] = None,
    horizon: Annotated[
        list[int] | None, Query(description="VaR horizons in bars (each 1-252; default 1)")
    ] = None,
    window: Annotated[
        int | None, Query(ge=2, le=100_000, description="rolling window in bars")
    ] = None,
    top: Annotated[int, Query(ge=1, le=50, description="drawdowns in the table")] = 5,
) -> Options:
    confidences = tuple(confidence or (0.95, 0.99))
    horizons = tuple(horizon or (1,))
    problems = []
    if len(confidences) > 5 or not all(0.5 <= c <= 0.999 for c in confidences):
        problems.append(
            {
                "loc": ["query", "confidence"],
                "code": "out_of_range",
                "message": "at most 5 levels, each in [0.5, 0.999]",
            }
        )
    if len(horizons) > 5 or not all(1 <= h <= 252 for h in horizons):
        problems.append(
            {
                "loc": ["query", "horizon"],
                "code": "out_of_range",
                "message": "at most 5 horizons, each 1 to 252 bars",
            }
        )
    if problems:
        raise ValidationFailed("bad analysis options", errors=problems)
    return Options(confidences=confidences, horizons=horizons, window=window, top_drawdowns=top)


ServicesDep = Annotated[Analytics, Depends(services_dependency(Analytics))]
ReaderDep = Annotated[Principal, Depends(reader)]
WriterDep = Annotated[Principal, Depends(writer)]
OptionsDep = Annotated[Options, Depends(options)]
