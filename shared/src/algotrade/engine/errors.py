"""Errors the engine raises on purpose, rooted at `algotrade.errors.AlgoTradeError`."""

from __future__ import annotations

from collections.abc import Sequence

from algotrade.engine.problems import Problem
from algotrade.errors import AlgoTradeError


class GraphInvalid(AlgoTradeError):
    """A graph that cannot be compiled; ``problems`` lists every defect found."""

    status = 422
    title = "Invalid strategy graph"
    code = "graph_invalid"

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        count = len(self.problems)
        first = self.problems[0].message if self.problems else "no details"
        detail = f"{count} problem{'s' if count != 1 else ''} in the strategy graph: {first}"
        super().__init__(detail, errors=[p.as_dict() for p in self.problems])


class PlanDecodeError(AlgoTradeError):
    """Bytes that are not a serialised plan of this engine version (e.g. a stale cache entry)."""

    status = 500
    title = "Unreadable compiled plan"
    code = "plan_decode_error"


class BarRejected(AlgoTradeError):
    """A bar a stream cannot take: malformed, or not after the last bar it has seen."""

    status = 422
    title = "Bar rejected"
    code = "bar_rejected"


class StateMismatch(AlgoTradeError):
    """A checkpoint that does not belong to this plan or is damaged."""

    status = 422
    title = "Stream state does not fit the plan"
    code = "stream_state_mismatch"
