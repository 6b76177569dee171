"""Where a session's orders go: behind `Broker`, so that a session can later trade through an
execution agent instead of the paper broker without the worker changing.

`PaperBroker` runs the plan and the shared fill model bar by bar
(`algotrade.simulation.live.LiveSession`): a signal on bar t's close fills at bar t+1's open,
with the fees, slippage, sizing and stops of the session's config, exactly as in a backtest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, cast

from algotrade.engine import Plan
from algotrade.metrics import Metrics
from algotrade.simulation import ResolvedConfig, live_book
from algotrade.simulation.live import BarOutcome, LiveBar, LiveSession, LiveTemplate
from algotrade.simulation.live_book import Applied, LiveBook


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

    @property
    def mark(self) -> float | None:
        """The last bar's close (None before the first close)."""
        ...

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

    def apply_many(self, accounts: Sequence[Account], bar: LiveBar) -> Applied:
        """`Account.apply` of one bar to each account (of this broker), as one would one by
        one; an account whose last bar is not before ``bar`` is left as it is, and one that
        fails is reported in `Applied.failed` without affecting the others."""
        ...

    def snapshots(self, accounts: Sequence[Account]) -> list[bytes]:
        """`Account.snapshot` of each account (of this broker)."""
        ...


class PaperBroker:
    """Paper trading on the shared fill model (the same one backtests use).

    Sessions of one plan and config share a `LiveTemplate` (the executor's program, built
    once) and live in its `LiveBook`, whose sessions a bar advances together (`apply_many`:
    one compiled loop per page of sessions instead of a call per session). The broker keeps
    the most recently used ``templates`` books; sessions of an evicted book keep working (a
    new book serves new ones).
    """

    def __init__(self, templates: int = 1_024) -> None:
        self._books: dict[tuple[str, str], LiveBook] = {}
        self._capacity = templates

    def book(self, plan: Plan, config: ResolvedConfig) -> LiveBook:
        key = (plan.plan_id, config.model_dump_json())
        book = self._books.pop(key, None)
        if book is None:
            book = LiveBook(LiveTemplate(plan, config))
            if len(self._books) >= self._capacity:
                del self._books[next(iter(self._books))]
        self._books[key] = book  # most recently used last
        return book

    def start(self, plan: Plan, config: ResolvedConfig) -> Account:
        return self.book(plan, config).start()

    def restore(self, plan: Plan, config: ResolvedConfig, data: bytes) -> Account:
        return self.book(plan, config).restore(data)

    def apply_many(self, accounts: Sequence[Account], bar: LiveBar) -> Applied:
        return live_book.apply_many(cast(Sequence[LiveSession], accounts), bar)

    def snapshots(self, accounts: Sequence[Account]) -> list[bytes]:
        return live_book.snapshots(cast(Sequence[LiveSession], accounts))


def live_bar(
    ts: int, open_: float, high: float, low: float, close: float, volume: float
) -> LiveBar:
    """A closed bar for `Account.apply`; ``ts`` is its open time in epoch milliseconds."""
    return LiveBar(ts, open_, high, low, close, volume)
