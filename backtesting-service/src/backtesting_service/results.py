"""Where results live in S3: ``backtests/{user}/{job}/summary.json``, ``equity.parquet`` and
``trades.parquet``.

Keys depend only on the user and the job, and the content only on the job's inputs, so a job
redone after a crash overwrites its objects with identical bytes.
"""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import quote

import pyarrow as pa
import pyarrow.parquet as pq

from algotrade.errors import NotFound
from algotrade.storage import ObjectStore

SUMMARY = "summary.json"
EQUITY = "equity.parquet"
TRADES = "trades.parquet"


def results_prefix(user_id: str, job_id: str) -> str:
    return f"backtests/{quote(user_id, safe='')}/{job_id}/"


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


class ResultStore:
    def __init__(self, store: ObjectStore) -> None:
        self._store = store

    async def put_backtest(
        self, user_id: str, job_id: str, summary: dict[str, Any], equity: bytes, trades: bytes
    ) -> None:
        """Equity and trades first, the summary last: a summary means the files are there."""
        prefix = results_prefix(user_id, job_id)
        parquet = "application/vnd.apache.parquet"
        await self._store.put_bytes(prefix + EQUITY, equity, parquet)
        await self._store.put_bytes(prefix + TRADES, trades, parquet)
        await self._store.put_json(prefix + SUMMARY, summary)

    async def put_summary(self, user_id: str, job_id: str, summary: dict[str, Any]) -> None:
        await self._store.put_json(results_prefix(user_id, job_id) + SUMMARY, summary)

    async def summary(self, user_id: str, job_id: str) -> dict[str, Any]:
        value: dict[str, Any] = await self._store.get_json(
            results_prefix(user_id, job_id) + SUMMARY
        )
        return value

    async def table(self, user_id: str, job_id: str, name: str) -> pa.Table:
        try:
            return await self._store.get_parquet(results_prefix(user_id, job_id) + name)
        except NotFound:
            raise NotFound(f"backtest {job_id} has no stored {name}") from None

    async def delete(self, user_id: str, job_id: str) -> int:
        return await self._store.delete_prefix(results_prefix(user_id, job_id))
