"""Reading every page of a listing, for the two kinds the platform has: offset pages with a
``total`` (trades, strategies), and cursor pages with ``next_cursor`` (jobs, sessions).

Each page asks for ``page_size`` items; the server may clamp that, so the next offset comes from
what the page held, not from what was asked.
"""

from __future__ import annotations

from collections.abc import Callable

from algotrade_client.calls import JSON, Flow, Rows


def offset_pages(page: Callable[[int], Flow[JSON]], items: str, total: str = "total") -> Flow[Rows]:
    """Every item of ``page(offset)`` answers, following ``offset`` until ``total``."""
    out: Rows = []
    while True:
        answer = yield from page(len(out))
        batch = list(answer[items])
        out.extend(batch)
        if not batch or len(out) >= int(answer[total]):
            return out


def cursor_pages(page: Callable[[str | None], Flow[JSON]], items: str = "items") -> Flow[Rows]:
    """Every item of ``page(cursor)`` answers, following ``next_cursor`` until it is null."""
    out: Rows = []
    cursor: str | None = None
    while True:
        answer = yield from page(cursor)
        out.extend(answer[items])
        cursor = answer.get("next_cursor")
        if not cursor:
            return out
