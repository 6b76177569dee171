"""The job lifecycle in PostgreSQL, with every announced change staged in the outbox.

queued -> running -> completed | failed, and queued/running -> cancelled. Each transition is a
guarded ``UPDATE ... WHERE status IN (...)``: a redelivered message, a second worker or a late
cancel can never move a job backwards or complete it twice. A job row and its work messages
(``backtest.requested``) are written in one transaction, so an accepted job is never lost; the
outcome events (``backtest.progress/completed/failed/cancelled``) are staged with the status
change that they announce.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Float, Row, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from algotrade import backtest_events as events
from algotrade.errors import Conflict, NotFound, ValidationFailed
from algotrade.events import Topics, default_registry, new_event_id
from algotrade.metrics import LOWER_IS_BETTER, RANKABLE_METRICS
from algotrade.outbox import OutboxRelay, stage_event
from algotrade.simulation.config import BacktestConfig
from backtesting_service import models
from backtesting_service.models import ACTIVE, CANCELLED, COMPLETED, FAILED, QUEUED, RUNNING
from backtesting_service.results import results_prefix

logger = logging.getLogger(__name__)

jobs_t = models.jobs
chunks_t = models.sweep_chunks
results_t = models.sweep_results

ERROR_MAX = 2_000


@dataclass(frozen=True, slots=True)
class NewJob:
    """Everything a submission decided, ready to be stored."""

    user_id: str
    kind: str
    strategy_id: str | None
    strategy_version: int | None
    plan_id: str
    symbol: str
    timeframe: str
    start: datetime
    end: datetime
    config: BacktestConfig
    spec: dict[str, Any]
    combinations: int = 1
    chunks: tuple[tuple[int, int], ...] = ((0, 0),)


class JobStore:
    """Reads and guarded writes of jobs, shared by the HTTP service and the workers."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        topics: Topics,
        *,
        producer: str,
        relay: OutboxRelay | None = None,
    ) -> None:
        self._sessions = sessions
        self._topics = topics
        self._producer = producer
        self._relay = relay

    # ------------------------------------------------------------------ the API side

    async def submit(self, job: NewJob) -> Row[Any]:
        """Store a job with one ``backtest.requested`` message per chunk, atomically."""
        job_id = new_event_id()
        async with self._sessions.begin() as session:
            row: Row[Any] = (
                await session.execute(
                    insert(jobs_t)
                    .values(
                        id=job_id,
                        user_id=job.user_id,
                        kind=job.kind,
                        status=QUEUED,
                        strategy_id=job.strategy_id,
                        strategy_version=job.strategy_version,
                        plan_id=job.plan_id,
                        symbol=job.symbol,
                        timeframe=job.timeframe,
                        start_at=job.start,
                        end_at=job.end,
                        config=job.config.model_dump(mode="json"),
                        config_id=job.config.config_id,
                        spec=job.spec,
                        combinations=job.combinations,
                        chunks_total=len(job.chunks),
                    )
                    .returning(jobs_t)
                )
            ).one()
            if job.kind == "sweep":
                await session.execute(
                    insert(chunks_t),
                    [
                        {"job_id": job_id, "chunk": k, "first": first, "last": last}
                        for k, (first, last) in enumerate(job.chunks)
                    ],
                )
            for k, (first, last) in enumerate(job.chunks):
                payload = events.BacktestRequested(
                    job_id=job_id,
                    kind=job.kind,  # type: ignore[arg-type]
                    chunk=k,
                    chunks=len(job.chunks),
                    first=first,
                    last=last,
                )
                await self._stage(
                    session,
                    self._topics.backtest_jobs,
                    events.REQUESTED,
                    payload,
                    job.user_id,
                    key=f"{job_id}:{k}",
                )
        self._wake()
        return row

    async def get(self, user_id: str, job_id: str, *, kind: str | None = None) -> Row[Any]:
        """The user's job; 404 for a job that does not exist or belongs to someone else."""
        query = select(jobs_t).where(jobs_t.c.id == job_id, jobs_t.c.user_id == user_id)
        if kind is not None:
            query = query.where(jobs_t.c.kind == kind)
        async with self._sessions() as session:
            row = (await session.execute(query)).first()
        if row is None:
            raise NotFound(f"no {kind or 'backtest'} {job_id}")
        return row

    async def page(
        self,
        user_id: str,
        *,
        limit: int,
        before: str | None = None,
        status: str | None = None,
        strategy_id: str | None = None,
        kind: str | None = None,
    ) -> list[Row[Any]]:
        """Newest first (job ids are time-ordered ULIDs); ``before`` is the last id seen."""
        query = select(jobs_t).where(jobs_t.c.user_id == user_id)
        if before is not None:
            query = query.where(jobs_t.c.id < before)
        if status is not None:
            query = query.where(jobs_t.c.status == status)
        if strategy_id is not None:
            query = query.where(jobs_t.c.strategy_id == strategy_id)
        if kind is not None:
            query = query.where(jobs_t.c.kind == kind)
        async with self._sessions() as session:
            rows = (await session.execute(query.order_by(jobs_t.c.id.desc()).limit(limit))).all()
        return list(rows)

    async def cancel(self, user_id: str, job_id: str) -> Row[Any]:
        """Cancel a queued or running job (workers notice between chunks)."""
        async with self._sessions.begin() as session:
            row: Row[Any] | None = (
                await session.execute(
                    update(jobs_t)
                    .where(
                        jobs_t.c.id == job_id,
                        jobs_t.c.user_id == user_id,
                        jobs_t.c.status.in_(ACTIVE),
                    )
                    .values(status=CANCELLED, finished_at=func.now(), updated_at=func.now())
                    .returning(jobs_t)
                )
            ).first()
            if row is None:
                current = await self.get(user_id, job_id)
                raise Conflict(
                    f"backtest {job_id} is {current.status}; only a queued or "
                    "running job can be cancelled"
                )
            await self._stage(
                session,
                self._topics.backtest_events,
                events.CANCELLED,
                events.BacktestCancelled(job_id=job_id, kind=row.kind),
                user_id,
                key=job_id,
            )
        self._wake()
        return row

    async def ranked_results(
        self, job_id: str, metric: str, *, limit: int, offset: int
    ) -> tuple[int, list[Row[Any]]]:
        """A sweep's combinations, best first by ``metric`` (nulls last)."""
        if metric not in RANKABLE_METRICS:
            raise ValidationFailed(
                f"cannot sort by {metric!r}; use one of {', '.join(RANKABLE_METRICS)}",
                errors=[{"loc": ["query", "sort"], "code": "unknown_metric", "message": metric}],
            )
        value = results_t.c.metrics[metric].astext.cast(Float)
        order = value.asc() if metric in LOWER_IS_BETTER else value.desc()
        async with self._sessions() as session:
            total = await session.scalar(
                select(func.count()).select_from(results_t).where(results_t.c.job_id == job_id)
            )
            rows = (
                await session.execute(
                    select(results_t)
                    .where(results_t.c.job_id == job_id)
                    .order_by(order.nulls_last(), results_t.c.combination)
                    .limit(limit)
                    .offset(offset)
                )
            ).all()
        return int(total or 0), list(rows)

    # ------------------------------------------------------------------ the worker side

    async def load(self, job_id: str) -> Row[Any] | None:
        async with self._sessions() as session:
            return (await session.execute(select(jobs_t).where(jobs_t.c.id == job_id))).first()

    async def is_active(self, job_id: str) -> bool:
        async with self._sessions() as session:
            status = await session.scalar(select(jobs_t.c.status).where(jobs_t.c.id == job_id))
        return status in ACTIVE

    async def chunk_done(self, job_id: str, chunk: int) -> bool:
        async with self._sessions() as session:
            done = await session.scalar(
                select(chunks_t.c.done_at).where(
                    chunks_t.c.job_id == job_id, chunks_t.c.chunk == chunk
                )
            )
        return done is not None

    async def start(self, job: Row[Any]) -> bool:
        """queued|running -> running (a redelivered job runs again). False if no longer active."""
        async with self._sessions.begin() as session:
            row = (
                await session.execute(
                    update(jobs_t)
                    .where(jobs_t.c.id == job.id, jobs_t.c.status.in_(ACTIVE))
                    .values(
                        status=RUNNING,
                        started_at=func.coalesce(jobs_t.c.started_at, func.now()),
                        updated_at=func.now(),
                    )
                    .returning(jobs_t.c.status)
                )
            ).first()
            if row is None:
                return False
            if job.status == QUEUED:
                await self._stage_progress(session, job, 0.0, job.chunks_done)
        self._wake()
        return True

    async def complete_backtest(self, job: Row[Any], summary: dict[str, Any], bars: int) -> bool:
        """running -> completed with its summary; False if it was cancelled meanwhile."""
        async with self._sessions.begin() as session:
            done = await self._complete(session, job, job_summary(summary), bars)
        self._wake()
        return done

    async def store_chunk(
        self,
        job: Row[Any],
        chunk: int,
        rows: Sequence[dict[str, Any]],
        bars: int,
        finish: Any,
    ) -> str:
        """Store a chunk's results once; the last chunk completes the sweep.

        ``finish(session_rows) -> summary`` builds (and stores) the sweep summary from every
        combination's row; it runs inside the transaction that completes the job. Returns
        ``"stored"``, ``"completed"``, ``"duplicate"`` (chunk stored before) or ``"inactive"``.
        """
        async with self._sessions.begin() as session:
            if rows:
                await session.execute(
                    pg_insert(results_t)
                    .values(
                        [
                            {
                                "job_id": job.id,
                                "combination": row["index"],
                                "params": row["params"],
                                "metrics": row["metrics"],
                                "folds": row["folds"],
                            }
                            for row in rows
                        ]
                    )
                    .on_conflict_do_nothing()
                )
            marked = (
                await session.execute(
                    update(chunks_t)
                    .where(
                        chunks_t.c.job_id == job.id,
                        chunks_t.c.chunk == chunk,
                        chunks_t.c.done_at.is_(None),
                    )
                    .values(done_at=func.now())
                    .returning(chunks_t.c.chunk)
                )
            ).first()
            if marked is None:
                return "duplicate"
            counted = (
                await session.execute(
                    update(jobs_t)
                    .where(jobs_t.c.id == job.id, jobs_t.c.status == RUNNING)
                    .values(
                        chunks_done=jobs_t.c.chunks_done + 1,
                        progress=(jobs_t.c.chunks_done + 1) * 1.0 / jobs_t.c.chunks_total,
                        bars=bars,
                        updated_at=func.now(),
                    )
                    .returning(jobs_t.c.chunks_done, jobs_t.c.chunks_total)
                )
            ).first()
            if counted is None:
                await session.rollback()
                return "inactive"
            if counted.chunks_done < counted.chunks_total:
                await self._stage_progress(
                    session, job, counted.chunks_done / counted.chunks_total, counted.chunks_done
                )
                outcome = "stored"
            else:
                every = (
                    await session.execute(select(results_t).where(results_t.c.job_id == job.id))
                ).all()
                summary = await finish(
                    [
                        {
                            "index": r.combination,
                            "params": r.params,
                            "metrics": r.metrics,
                            "folds": r.folds,
                        }
                        for r in every
                    ]
                )
                await self._complete(session, job, summary, bars)
                outcome = "completed"
        self._wake()
        return outcome

    async def fail(self, job: Row[Any], error: str) -> bool:
        """An active job -> failed, recording ``error``."""
        message = error[:ERROR_MAX]
        async with self._sessions.begin() as session:
            row = (
                await session.execute(
                    update(jobs_t)
                    .where(jobs_t.c.id == job.id, jobs_t.c.status.in_(ACTIVE))
                    .values(
                        status=FAILED,
                        error=message,
                        finished_at=func.now(),
                        updated_at=func.now(),
                    )
                    .returning(jobs_t.c.id)
                )
            ).first()
            if row is None:
                return False
            await self._stage(
                session,
                self._topics.backtest_events,
                events.FAILED,
                events.BacktestFailed(job_id=job.id, kind=job.kind, error=message),
                job.user_id,
                key=job.id,
            )
        self._wake()
        return True

    # ------------------------------------------------------------------ helpers

    async def _complete(
        self, session: AsyncSession, job: Row[Any], summary: dict[str, Any], bars: int
    ) -> bool:
        row = (
            await session.execute(
                update(jobs_t)
                .where(jobs_t.c.id == job.id, jobs_t.c.status == RUNNING)
                .values(
                    status=COMPLETED,
                    summary=summary,
                    bars=bars,
                    progress=1.0,
                    finished_at=func.now(),
                    updated_at=func.now(),
                )
                .returning(jobs_t.c.id)
            )
        ).first()
        if row is None:
            return False
        await self.stage_completed(session, job, summary)
        return True

    async def stage_completed(
        self, session: AsyncSession, job: Row[Any], summary: dict[str, Any]
    ) -> None:
        """Stage ``backtest.completed`` for ``job`` in the caller's transaction (also used for
        the jobs the Beta1 import stores completed, so analytics sees them like native ones)."""
        await self._stage(
            session,
            self._topics.backtest_events,
            events.COMPLETED,
            events.BacktestCompleted(
                job_id=job.id,
                kind=job.kind,
                strategy_id=job.strategy_id,
                strategy_version=job.strategy_version,
                plan_id=job.plan_id,
                symbol=job.symbol,
                timeframe=job.timeframe,
                results_prefix=results_prefix(job.user_id, job.id),
                summary=summary,
            ),
            job.user_id,
            key=job.id,
        )

    async def _stage_progress(
        self, session: AsyncSession, job: Row[Any], progress: float, chunks_done: int
    ) -> None:
        await self._stage(
            session,
            self._topics.backtest_events,
            events.PROGRESS,
            events.BacktestProgress(
                job_id=job.id,
                kind=job.kind,
                progress=progress,
                chunks_done=chunks_done,
                chunks_total=job.chunks_total,
            ),
            job.user_id,
            key=job.id,
        )

    async def _stage(
        self,
        session: AsyncSession,
        topic: str,
        type_: str,
        payload: BaseModel,
        user_id: str,
        *,
        key: str,
    ) -> None:
        envelope = default_registry.build(
            type_,
            payload,
            producer=self._producer,
            key=key,
            user_id=user_id,
            correlation_id=key.split(":", 1)[0],
        )
        await stage_event(session, models.SCHEMA.outbox, topic, envelope)

    def _wake(self) -> None:
        if self._relay is not None:
            self._relay.wake()


def job_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """What the jobs table keeps of a backtest's summary (the full one is in S3)."""
    keep = ("metrics", "open_positions", "calendar", "units", "timeframe", "periods_per_year")
    return {key: summary[key] for key in keep if key in summary} | {"trades": summary.get("trades")}
