"""Route dependencies: the service's domain objects (one ``ServicesDep``), scoped principals
and the analysis options every report endpoint takes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query
from pydantic import Field

from algotrade.auth import CurrentPrincipal, Principal
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
        list[Annotated[float, Field(ge=0.5, le=0.999)]] | None,
        Query(max_length=5, description="VaR confidence levels (default 0.95 and 0.99)"),
    ] = None,
    horizon: Annotated[
        list[Annotated[int, Field(ge=1, le=252)]] | None,
        Query(max_length=5, description="VaR horizons in bars (default 1)"),
    ] = None,
    window: Annotated[
        int | None, Query(ge=2, le=100_000, description="rolling window in bars")
    ] = None,
    top: Annotated[int, Query(ge=1, le=50, description="drawdowns in the table")] = 5,
) -> Options:
    confidences = tuple(confidence or (0.95, 0.99))
    horizons = tuple(horizon or (1,))
    return Options(confidences=confidences, horizons=horizons, window=window, top_drawdowns=top)


ServicesDep = Annotated[Analytics, Depends(services_dependency(Analytics))]
ReaderDep = Annotated[Principal, Depends(reader)]
WriterDep = Annotated[Principal, Depends(writer)]
OptionsDep = Annotated[Options, Depends(options)]
