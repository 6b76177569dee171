"""Many live sessions of one plan and config, advanced together: one kernel call per bar.

A forward-test worker applies each closed bar to every running session of its series; with
thousands of sessions, calling `LiveSession.apply` once per session costs far more in Python
and in numba's argument checks than the arithmetic does. A `LiveBook` keeps its sessions'
arrays as rows of shared pages (up to `PAGE_ROWS` sessions each), so that `apply_many` runs the
streaming executor and the fill model's step over all of a page's sessions in one compiled
loop, and `snapshots` writes all of a page's snapshots with a few NumPy copies.

A session of a book is an ordinary `LiveSession` (its arrays are views of its page's rows): it
can be applied, snapshotted and measured alone, with the same results bit for bit, which the
tests check against sessions on their own. Its row is freed when the session is gone.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numba
import numpy as np

from algotrade import metrics as metrics_module
from algotrade.engine import kernels
from algotrade.simulation import fills
from algotrade.simulation.live import (
    COUNT_BARS,
    COUNT_LAST_TS,
    SNAPSHOT_FORMAT,
    SNAPSHOT_HEADER,
    SNAPSHOT_MAGIC,
    BarOutcome,
    ClosedTrade,
    Fill,
    FloatArray,
    IntArray,
    LiveBar,
    LiveSession,
    LiveTemplate,
    fill_of,
    new_scratch,
    trade_of,
)

PAGE_ROWS: Final = 1_024  # the most sessions a page holds
FIRST_PAGE_ROWS: Final = 8

# The snapshot header (`live.SNAPSHOT_HEADER`) as a packed NumPy record, to write many at once.
_HEADER_DTYPE: Final = np.dtype(
    [
        ("magic", "S4"),
        ("format", "<u2"),
        ("node_len", "<u4"),
        ("account_len", "<u4"),
        ("bars", "<u8"),
        ("last_ts", "<i8"),
        ("plan", "S16"),
        ("config", "S16"),
    ]
)
assert _HEADER_DTYPE.itemsize == SNAPSHOT_HEADER.size

# Columns of `_apply_rows`' per-session result.
R_APPLIED, R_TRADES, R_FILLS, R_BARS, R_PREVIOUS = range(5)
V_POSITION, V_CASH, V_EQUITY = range(3)
_NO_TS: Final = np.iinfo(np.int64).min  # `R_PREVIOUS` of a session before its first bar


def _stamp() -> str:
    """A hash of the sources `_apply_rows` inlines from other modules (numba's on-disk cache
    only notices changes to this file; a closure's cell is part of its cache key)."""
    digest = hashlib.sha256()
    for module in (kernels, fills, metrics_module):
        try:
            digest.update(inspect.getsource(module).encode())
        except (OSError, TypeError):  # no source shipped
            digest.update(module.__name__.encode())
    return digest.hexdigest()


# Module globals, not closure cells: numba's cache key hashes a closure's cells, and a
# dispatcher there would make every process compile `apply_rows` again.
_run_bar = kernels.run_bar
_live_step = fills.live_step
_MAX_TRADES: Final = fills.MAX_BAR_TRADES
_MAX_FILLS: Final = fills.MAX_BAR_FILLS


def _compile_apply_rows(stamp: str) -> Any:
    def apply_rows(
        program: IntArray,
        kernel_params: FloatArray,
        signal_slots: IntArray,
        risk_slots: IntArray,
        modes: IntArray,
        params: FloatArray,
        nodes: FloatArray,
        values: FloatArray,
        accounts: FloatArray,
        counts: IntArray,
        rows: IntArray,
        bar: FloatArray,
        ts: int,
        trades: FloatArray,
        fill_rows: FloatArray,
        out_trades: FloatArray,
        out_fills: FloatArray,
        result: IntArray,
        figures: FloatArray,
    ) -> None:
        """`LiveSession.apply` for each row of ``rows``; a row whose last bar is not before
        ``ts`` is left as it is (``result[j, R_APPLIED]`` 0). Closed trades and fills go to
        ``out_trades``/``out_fills`` at `_MAX_TRADES`/`_MAX_FILLS` rows per session."""
        _ = stamp
        for j in range(rows.shape[0]):
            r = rows[j]
            bars = counts[r, COUNT_BARS]
            result[j, R_BARS] = bars
            result[j, R_PREVIOUS] = counts[r, COUNT_LAST_TS] if bars > 0 else _NO_TS
            if bars > 0 and ts <= counts[r, COUNT_LAST_TS]:
                result[j, R_APPLIED] = 0
                continue
            row_values = values[r]
            for k in range(5):
                row_values[k] = bar[k]
            _run_bar(program, kernel_params, nodes[r], row_values, bars)
            account = accounts[r]
            closed, filled = _live_step(
                account,
                row_values,
                signal_slots,
                risk_slots,
                modes,
                params,
                float(ts),
                trades,
                fill_rows,
            )
            counts[r, COUNT_BARS] = bars + 1
            counts[r, COUNT_LAST_TS] = ts
            result[j, R_APPLIED] = 1
            result[j, R_TRADES] = closed
            result[j, R_FILLS] = filled
            result[j, R_BARS] = bars + 1
            for k in range(closed):
                out_trades[j * _MAX_TRADES + k] = trades[k]
            for k in range(filled):
                out_fills[j * _MAX_FILLS + k] = fill_rows[k]
            figures[j, V_POSITION] = account[fills.S_SIDE] * account[fills.S_QUANTITY]
            figures[j, V_CASH] = account[fills.S_CASH]
            figures[j, V_EQUITY] = account[fills.L_CURVE + 5]

    return numba.njit(cache=True, nogil=True, error_model="numpy")(apply_rows)


_apply_rows = _compile_apply_rows(_stamp())


class _Page:
    """``rows`` sessions' arrays; a row is either a session's or free."""

    __slots__ = ("accounts", "counts", "free_rows", "nodes", "values")

    def __init__(self, template: LiveTemplate, rows: int) -> None:
        self.nodes = np.zeros((rows, template.initial_nodes.shape[0]))
        self.accounts = np.zeros((rows, fills.LIVE_SLOTS))
        self.values = np.full((rows, template.value_slots), np.nan)
        self.counts = np.zeros((rows, 2), dtype=np.int64)
        self.free_rows = list(range(rows - 1, -1, -1))

    def free(self, row: int) -> None:
        self.free_rows.append(row)


class LiveBook:
    """The sessions of one `LiveTemplate`, in pages."""

    def __init__(self, template: LiveTemplate) -> None:
        self.template = template
        self._pages: list[_Page] = []
        self._scratch = new_scratch()

    def start(self) -> LiveSession:
        """A new session, flat with the initial capital, before its first bar."""
        t = self.template
        return self._place(t.initial_nodes, t.initial_account, 0, None)

    def restore(self, data: bytes) -> LiveSession:
        """The session `LiveSession.snapshot` saved (`StateMismatch` if it does not fit)."""
        return self._place(*self.template.unpack(data))

    def _place(
        self, nodes: FloatArray, account: FloatArray, bars: int, last_ts: int | None
    ) -> LiveSession:
        page = next((p for p in reversed(self._pages) if p.free_rows), None)
        if page is None:  # pages double up to PAGE_ROWS: a book of one session holds 8 rows
            page = _Page(self.template, min(PAGE_ROWS, FIRST_PAGE_ROWS << len(self._pages)))
            self._pages.append(page)
        row = page.free_rows.pop()
        page.nodes[row] = nodes
        page.accounts[row] = account
        page.values[row] = np.nan
        return LiveSession(
            self.template,
            page.nodes[row],
            page.accounts[row],
            bars,
            last_ts,
            values=page.values[row],
            counts=page.counts[row],
            scratch=self._scratch,
            home=(page, row),
        )


@dataclass(frozen=True, slots=True)
class Applied:
    """What one bar did to each of a list of sessions (same order). A session whose last bar
    was not before this one (`StaleBar` on its own) is left as it was: ``applied`` False and
    its figures NaN. A session whose bar raised is in ``failed`` with the reason (and not
    applied); the others are not affected by it."""

    ts: int
    applied: list[bool]
    bars: list[int]  # bars applied, this one included when applied
    previous: list[int | None]  # the last bar's ts before this one (None: no bar yet)
    position: list[float]
    cash: list[float]
    equity: list[float]
    warmed_up: list[bool]  # after this bar
    warmed_now: list[bool]  # this bar completed the plan's warm-up
    events: dict[int, tuple[tuple[Fill, ...], tuple[ClosedTrade, ...]]]  # by index, if any
    failed: dict[int, str]  # by index: why

    def outcome(self, index: int) -> BarOutcome | None:
        """The `BarOutcome` `LiveSession.apply` would have returned (None: not applied)."""
        if not self.applied[index]:
            return None
        made, closed = self.events.get(index, ((), ()))
        return BarOutcome(
            ts=self.ts,
            fills=made,
            closed=closed,
            position=self.position[index],
            cash=self.cash[index],
            equity=self.equity[index],
            warmed_up=self.warmed_up[index],
        )


def _groups(
    sessions: Sequence[LiveSession],
) -> tuple[dict[int, tuple[_Page, LiveTemplate, list[int], list[int]]], list[int]]:
    """Sessions by page: ``{id(page): (page, template, indexes, rows)}``, and the indexes of
    sessions on their own."""
    groups: dict[int, tuple[_Page, LiveTemplate, list[int], list[int]]] = {}
    alone: list[int] = []
    for index, session in enumerate(sessions):
        home = session.home
        if home is None:
            alone.append(index)
            continue
        page, row = home
        group = groups.get(id(page))
        if group is None:
            group = groups[id(page)] = (page, session.template, [], [])
        group[2].append(index)
        group[3].append(row)
    return groups, alone


def apply_many(sessions: Sequence[LiveSession], bar: LiveBar) -> Applied:
    """Apply one closed bar to every session, as `LiveSession.apply` would one by one."""
    count = len(sessions)
    applied = np.zeros(count, dtype=np.bool_)
    bars = np.zeros(count, dtype=np.int64)
    previous = np.full(count, _NO_TS, dtype=np.int64)
    figures = np.full((count, 3), np.nan)
    warmup = np.array([s.template.warmup for s in sessions], dtype=np.int64)
    events: dict[int, tuple[tuple[Fill, ...], tuple[ClosedTrade, ...]]] = {}
    failed: dict[int, str] = {}
    ts = bar.ts
    groups, alone = _groups(sessions)
    ohlcv = np.array([bar.open, bar.high, bar.low, bar.close, bar.volume])
    for page, t, indexes, rows in groups.values():
        m = len(rows)
        result = np.zeros((m, 5), dtype=np.int64)
        got = np.empty((m, 3))
        out_trades = np.empty((m * fills.MAX_BAR_TRADES, fills.LIVE_TRADE_COLUMNS))
        out_fills = np.empty((m * fills.MAX_BAR_FILLS, fills.FILL_COLUMNS))
        trades, fill_rows = new_scratch()
        _apply_rows(
            t.program,
            t.kernel_params,
            t.signal_slots,
            t.risk_slots,
            t.modes,
            t.params,
            page.nodes,
            page.values,
            page.accounts,
            page.counts,
            np.array(rows, dtype=np.int64),
            ohlcv,
            ts,
            trades,
            fill_rows,
            out_trades,
            out_fills,
            result,
            got,
        )
        where = np.array(indexes, dtype=np.int64)
        applied[where] = result[:, R_APPLIED] == 1
        bars[where] = result[:, R_BARS]
        previous[where] = result[:, R_PREVIOUS]
        figures[where] = got
        busy = np.flatnonzero(result[:, R_TRADES] + result[:, R_FILLS])
        for j in busy.tolist():
            closed = int(result[j, R_TRADES])
            filled = int(result[j, R_FILLS])
            first_trade = j * fills.MAX_BAR_TRADES
            first_fill = j * fills.MAX_BAR_FILLS
            try:
                events[indexes[j]] = (
                    tuple(
                        fill_of(row, ts)
                        for row in out_fills[first_fill : first_fill + filled].tolist()
                    ),
                    tuple(
                        trade_of(row, ts)
                        for row in out_trades[first_trade : first_trade + closed].tolist()
                    ),
                )
            except Exception as exc:  # a fill the model could not describe: this session's
                failed[indexes[j]] = f"bar {ts}: {type(exc).__name__}: {exc}"
    for index in alone:  # not in a book: one at a time (rare)
        session = sessions[index]
        last = session.last_ts
        bars[index] = session.bars_applied
        if last is not None:
            previous[index] = last
            if ts <= last:
                continue
        try:
            outcome = session.apply(bar)
        except Exception as exc:
            failed[index] = f"bar {ts}: {type(exc).__name__}: {exc}"
            continue
        applied[index] = True
        bars[index] = session.bars_applied
        figures[index] = (outcome.position, outcome.cash, outcome.equity)
        if outcome.fills or outcome.closed:
            events[index] = (outcome.fills, outcome.closed)
    for index in failed:
        applied[index] = False
    return Applied(
        ts=ts,
        applied=applied.tolist(),
        bars=bars.tolist(),
        previous=[None if t == _NO_TS else t for t in previous.tolist()],
        position=figures[:, V_POSITION].tolist(),
        cash=figures[:, V_CASH].tolist(),
        equity=figures[:, V_EQUITY].tolist(),
        warmed_up=(bars >= warmup).tolist(),
        warmed_now=(applied & (bars == warmup)).tolist(),
        events=events,
        failed=failed,
    )


def snapshots(sessions: Sequence[LiveSession]) -> list[bytes]:
    """`LiveSession.snapshot` of every session (same bytes), a page at a time."""
    out: list[bytes] = [b""] * len(sessions)
    groups, alone = _groups(sessions)
    for page, t, indexes, row_list in groups.values():
        rows = np.array(row_list, dtype=np.int64)
        m = rows.shape[0]
        node_len = page.nodes.shape[1]
        header = np.zeros(m, dtype=_HEADER_DTYPE)
        header["magic"] = SNAPSHOT_MAGIC
        header["format"] = SNAPSHOT_FORMAT
        header["node_len"] = node_len
        header["account_len"] = fills.LIVE_SLOTS
        counts = page.counts[rows]
        header["bars"] = counts[:, COUNT_BARS]
        header["last_ts"] = np.where(counts[:, COUNT_BARS] > 0, counts[:, COUNT_LAST_TS], 0)
        header["plan"] = t.plan_digest
        header["config"] = t.config_digest
        size = SNAPSHOT_HEADER.size
        width = size + 8 * (node_len + fills.LIVE_SLOTS)
        matrix = np.empty((m, width), dtype=np.uint8)
        matrix[:, :size] = header.view(np.uint8).reshape(m, size)
        matrix[:, size : size + 8 * node_len] = (
            page.nodes[rows].astype("<f8", copy=False).view(np.uint8)
        )
        matrix[:, size + 8 * node_len :] = (
            page.accounts[rows].astype("<f8", copy=False).view(np.uint8)
        )
        blob = matrix.tobytes()
        for j, index in enumerate(indexes):
            out[index] = blob[j * width : (j + 1) * width]
    for index in alone:
        out[index] = sessions[index].snapshot()
    return out
