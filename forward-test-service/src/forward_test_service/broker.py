"""Where a session's orders go: behind `Broker`, so that a session can later trade through an
execution agent instead of the paper broker without the worker changing.

`PaperBroker` runs the plan and the shared fill model bar by bar
(`algotrade.simulation.live.LiveSession`): a signal on bar t's close fills at bar t+1's open,
with the fees, slippage, sizing and stops of the session's config, exactly as in a backtest.
"""

from __future__ import annotations

from typing import Protocol

from algotrade.engine import Plan
from algotrade.metrics import Metrics
from algotrade.simulation import ResolvedConfig
from algotrade.simulation.live import BarOutcome, LiveBar, LiveTemplate


class Account(Protocol):
    """One session's strategy state and account, advanced one closed bar at a time."""

    @property
    def last_ts(self) -> int | None: ...

    @property
    def bars_applied(self) -> int: ...

    @property
    def warmed_up(self) -> bool: ...

    @property
    def position(self) -> float: ...

    @property
    def cash(self) -> float: ...

    @property
    def equity(self) -> float: ...

    def apply(self, bar: LiveBar) -> BarOutcome:
        """Apply a closed bar (``ValueError`` when its time is not after `last_ts`)."""
        ...

    def snapshot(self) -> bytes:
        """A checkpoint `Broker.restore` resumes from."""
        ...

    def metrics(self) -> Metrics: ...


class Broker(Protocol):
    def start(self, plan: Plan, config: ResolvedConfig) -> Account: ...

    def restore(self, plan: Plan, config: ResolvedConfig, data: bytes) -> Account: ...


class PaperBroker:
    """Paper trading on the shared fill model (the same one backtests use).

    Sessions of one plan and config share a `LiveTemplate` (the executor's program, built
    once); the broker keeps the most recently used ``templates`` of them.
    """

    def __init__(self, templates: int = 1_024) -> None:
        self._templates: dict[tuple[str, str], LiveTemplate] = {}
        self._capacity = templates

    def template(self, plan: Plan, config: ResolvedConfig) -> LiveTemplate:
        key = (plan.plan_id, config.model_dump_json())
        template = self._templates.pop(key, None)
        if template is None:
            template = LiveTemplate(plan, config)
            if len(self._templates) >= self._capacity:
                del self._templates[next(iter(self._templates))]
        self._templates[key] = template  # most recently used last
        return template

    def start(self, plan: Plan, config: ResolvedConfig) -> Account:
        return self.template(plan, config).start()

    def restore(self, plan: Plan, config: ResolvedConfig, data: bytes) -> Account:
        return self.template(plan, config).restore(data)


def live_bar(
    ts: int, open_: float, high: float, low: float, close: float, volume: float
) -> LiveBar:
    """A closed bar for `Account.apply`; ``ts`` is its open time in epoch milliseconds."""
    return LiveBar(ts, open_, high, low, close, volume)
