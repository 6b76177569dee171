"""Request models of the analytics API (strict: no string or bool stands in for a number)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, model_validator

from algotrade.events import ULID_PATTERN

SYMBOL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,31}$"


class MemberIn(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    kind: Literal["session", "backtest"]
    id: str = Field(pattern=ULID_PATTERN, description="the session or backtest job id")
    weight: StrictFloat | None = Field(
        default=None, ge=0, le=1e6, description="with weighting 'weights' (normalised to 1)"
    )


class PortfolioCreate(BaseModel):
    """A portfolio of your sessions and backtests, analysed when read."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str = Field(min_length=1, max_length=200)
    members: list[MemberIn] = Field(min_length=1, max_length=1_000)
    weighting: Literal["equal", "capital", "weights"] = "capital"
    benchmark: str | None = Field(default=None, pattern=SYMBOL_PATTERN)

    @model_validator(mode="after")
    def _weights(self) -> PortfolioCreate:
        seen = set()
        for member in self.members:
            if (member.kind, member.id) in seen:
                raise ValueError(f"{member.kind} {member.id} is listed twice")
            seen.add((member.kind, member.id))
        if self.weighting == "weights":
            if any(m.weight is None for m in self.members):
                raise ValueError("weighting 'weights' needs a weight for every member")
            if not sum(float(m.weight or 0) for m in self.members) > 0:
                raise ValueError("the weights must sum to more than zero")
        elif any(m.weight is not None for m in self.members):
            raise ValueError(
                f"weights are only read with weighting 'weights', not {self.weighting!r}"
            )
        return self
