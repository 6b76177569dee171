"""File imports: per-user jobs that stream a CSV or Parquet file into history in chunks.

A job is created from an upload (spooled to disk first, never held in memory) or from a path
inside the configured import directory, then runs in the background; its progress, counts and
first rejected rows (with line numbers) are stored on the job row as it goes.

- Default mode: each chunk is its own transaction through `BarIngestor.ingest`; bad rows are
  reported and the valid ones are stored.
- ``atomic``: the whole file is one transaction; the first chunk with a bad row aborts it and
  nothing is written (no history, no events, no window change).

Re-running an import is safe: stored bars come back as duplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.datastructures import UploadFile

from algotrade.db import get_owned, list_owned
from algotrade.errors import AlgoTradeError, BadRequest, Forbidden, NotFound
from algotrade.events import new_event_id
from market_data_service import models
from market_data_service.bar_files import (
    BarFileError,
    Chunk,
    detect_format,
    read_csv_chunks,
    read_parquet_chunks,
)
from market_data_service.batch import Rejection
from market_data_service.ingest import BarIngestor
from market_data_service.window_cache import Series

logger = logging.getLogger(__name__)

STALE_AFTER = timedelta(minutes=2)
COPY_CHUNK = 1024 * 1024


class PathOutsideImportDir(Forbidden):
    code = "path_outside_import_dir"


class ImportPathsDisabled(Forbidden):
    code = "import_paths_disabled"


class _AtomicAbort(Exception):
    def __init__(self, rejections: list[Rejection]) -> None:
        super().__init__("atomic import aborted")
        self.rejections = rejections


@dataclass
class ImportJob:
    id: str
    user_id: str
    owner: str  # whose series the import writes: the user's own, or the platform's
    path: Path
    file_format: str
    symbol: str
    timeframe: str
    atomic: bool
    spooled: bool
    counts: dict[str, int] = field(
        default_factory=lambda: {
            "rows_read": 0,
            "rows_rejected": 0,
            "accepted": 0,
            "duplicate": 0,
            "corrected": 0,
            "bytes_done": 0,
        }
    )
    errors: list[dict[str, Any]] = field(default_factory=list)


class ImportRunner:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        ingestor: BarIngestor,
        import_dir: Path | None,
        spool_dir: Path | None,
        chunk_rows: int,
        max_reported_errors: int,
        concurrency: int,
    ) -> None:
        self._sessions = sessions
        self._ingestor = ingestor
        self._import_dir = import_dir.resolve() if import_dir is not None else None
        self._spool_dir = spool_dir or Path(tempfile.gettempdir()) / "algotrade-imports"
        self._chunk_rows = chunk_rows
        self._max_errors = max_reported_errors
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[None]] = set()

    # -- creating jobs -------------------------------------------------------------------

    def resolve_path(self, relative: str) -> Path:
        """A file inside the import directory, or 403/404 (never a path outside it)."""
        if self._import_dir is None:
            raise ImportPathsDisabled("imports from server paths are disabled (set IMPORT_DIR)")
        if "\x00" in relative:
            raise PathOutsideImportDir("the path contains a NUL byte")
        candidate = (self._import_dir / relative).resolve()
        if not candidate.is_relative_to(self._import_dir):
            raise PathOutsideImportDir("the path points outside the import directory")
        if not candidate.is_file():
            raise NotFound(f"no file {relative!r} in the import directory")
        return candidate

    async def from_path(
        self,
        *,
        user_id: str,
        relative: str,
        symbol: str,
        timeframe: str,
        atomic: bool,
        owner: str | None = None,
    ) -> str:
        path = self.resolve_path(relative)
        file_format = detect_format(path)
        return await self._create(
            user_id=user_id,
            owner=user_id if owner is None else owner,
            origin="path",
            filename=relative,
            path=path,
            file_format=file_format,
            symbol=symbol,
            timeframe=timeframe,
            atomic=atomic,
            spooled=False,
        )

    async def from_upload(
        self,
        *,
        user_id: str,
        upload: UploadFile,
        symbol: str,
        timeframe: str,
        atomic: bool,
        declared_format: str | None,
        owner: str | None = None,
    ) -> str:
        self._spool_dir.mkdir(parents=True, exist_ok=True)
        import_id = new_event_id()
        spooled = self._spool_dir / f"{import_id}.upload"
        try:
            await asyncio.to_thread(_copy_upload, upload.file, spooled)
            if spooled.stat().st_size == 0:
                raise BadRequest("the uploaded file is empty")
            name = (upload.filename or "upload").rsplit("/", 1)[-1][:300]
            file_format = declared_format or _format_from_name(name) or detect_format(spooled)
            return await self._create(
                user_id=user_id,
                owner=user_id if owner is None else owner,
                origin="upload",
                filename=name,
                path=spooled,
                file_format=file_format,
                symbol=symbol,
                timeframe=timeframe,
                atomic=atomic,
                spooled=True,
                import_id=import_id,
            )
        except BaseException:
            spooled.unlink(missing_ok=True)
            raise

    async def _create(
        self,
        *,
        user_id: str,
        owner: str,
        origin: str,
        filename: str,
        path: Path,
        file_format: str,
        symbol: str,
        timeframe: str,
        atomic: bool,
        spooled: bool,
        import_id: str | None = None,
    ) -> str:
        job = ImportJob(
            id=import_id or new_event_id(),
            user_id=user_id,
            owner=owner,
            path=path,
            file_format=file_format,
            symbol=symbol,
            timeframe=timeframe,
            atomic=atomic,
            spooled=spooled,
        )
        async with self._sessions() as session, session.begin():
            await session.execute(
                models.imports.insert().values(
                    id=job.id,
                    user_id=user_id,
                    owner=owner,
                    state="queued",
                    origin=origin,
                    filename=filename,
                    file_format=file_format,
                    symbol=symbol,
                    timeframe=timeframe,
                    atomic=atomic,
                    bytes_total=await asyncio.to_thread(lambda: path.stat().st_size),
                )
            )
        task = asyncio.create_task(self._run(job), name=f"import-{job.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job.id

    # -- reading jobs --------------------------------------------------------------------

    async def get(self, user_id: str, import_id: str) -> dict[str, Any]:
        async with self._sessions() as session:
            return await get_owned(session, models.imports, import_id, user_id, what="import")

    async def list_for(self, user_id: str, limit: int = 100) -> list[dict[str, Any]]:
        async with self._sessions() as session:
            return await list_owned(session, models.imports, user_id, limit=limit)

    # -- running jobs --------------------------------------------------------------------

    async def wait_idle(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def shutdown(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def fail_stale(self) -> int:
        """Jobs left running by a process that died: mark them failed (re-running is safe)."""
        cutoff = datetime.now(UTC) - STALE_AFTER
        async with self._sessions() as session, session.begin():
            result = await session.execute(
                update(models.imports)
                .where(
                    models.imports.c.state.in_(("queued", "running")),
                    models.imports.c.updated_at < cutoff,
                )
                .values(
                    state="failed",
                    message="interrupted by a service restart; run it again (it is idempotent)",
                    finished_at=datetime.now(UTC),
                )
            )
        return int(getattr(result, "rowcount", 0) or 0)

    async def _run(self, job: ImportJob) -> None:
        try:
            async with self._slots:
                await self._save(job, state="running")
                try:
                    if job.atomic:
                        await self._run_atomic(job)
                    else:
                        await self._run_chunked(job)
                except _AtomicAbort as abort:
                    job.counts.update(accepted=0, duplicate=0, corrected=0)
                    self._note_errors(job, abort.rejections)
                    first = abort.rejections[0]
                    await self._save(
                        job,
                        state="failed",
                        message=f"atomic import aborted at line {first.index} ({first.reason}); "
                        "nothing was written",
                        finished=True,
                    )
                    return
                except (BarFileError, AlgoTradeError) as exc:
                    await self._save(job, state="failed", message=str(exc), finished=True)
                    return
                except asyncio.CancelledError:
                    await asyncio.shield(
                        self._save(
                            job, state="failed", message="cancelled at shutdown", finished=True
                        )
                    )
                    raise
                except Exception as exc:
                    logger.exception("import %s failed", job.id)
                    await self._save(
                        job,
                        state="failed",
                        message=f"internal error ({type(exc).__name__}); the import stopped",
                        finished=True,
                    )
                    return
                await self._save(job, state="completed", finished=True)
        except Exception:
            logger.exception("import %s: recording its outcome failed", job.id)
            with contextlib.suppress(Exception):
                job.errors = []
                await self._save(
                    job,
                    state="failed",
                    message="failed; the reason could not be recorded",
                    finished=True,
                )
        finally:
            if job.spooled:
                job.path.unlink(missing_ok=True)

    async def _run_chunked(self, job: ImportJob) -> None:
        async for chunk in self._chunks(job):
            written = await self._ingestor.ingest(
                chunk.bars, owner=job.owner, source="import", user_id=job.user_id
            )
            self._count(job, chunk)
            for name, value in written.counts().items():
                job.counts[name] += value
            await self._save(job)

    async def _run_atomic(self, job: ImportJob) -> None:
        touched: set[Series] = set()
        events = 0
        claimed = False
        pending = {"accepted": 0, "duplicate": 0, "corrected": 0}
        async with self._sessions() as session, session.begin():
            async for chunk in self._chunks(job):
                self._count(job, chunk)
                if chunk.rejections:
                    raise _AtomicAbort(chunk.rejections)
                written = await self._ingestor.write(
                    session, chunk.bars, owner=job.owner, source="import", user_id=job.user_id
                )
                touched.update(written.series)
                events += written.events
                claimed = claimed or written.claimed
                for name, value in written.counts().items():
                    pending[name] += value
                await self._save(job)
        job.counts.update(pending)
        await self._ingestor.after_commit(job.owner, touched, events, claimed=claimed)

    async def _chunks(self, job: ImportJob) -> AsyncIterator[Chunk]:
        reader = read_parquet_chunks if job.file_format == "parquet" else read_csv_chunks
        chunks: Iterator[Chunk] = reader(
            job.path, symbol=job.symbol, timeframe=job.timeframe, chunk_rows=self._chunk_rows
        )
        done = object()
        while True:
            chunk = await asyncio.to_thread(next, chunks, done)
            if chunk is done:
                return
            assert isinstance(chunk, Chunk)
            yield chunk

    def _count(self, job: ImportJob, chunk: Chunk) -> None:
        job.counts["rows_read"] += chunk.rows
        job.counts["rows_rejected"] += len(chunk.rejections)
        job.counts["bytes_done"] = chunk.bytes_done
        self._note_errors(job, chunk.rejections)

    def _note_errors(self, job: ImportJob, rejections: list[Rejection]) -> None:
        room = self._max_errors - len(job.errors)
        if room > 0:
            job.errors.extend(r.as_dict("line") for r in rejections[:room])

    async def _save(
        self,
        job: ImportJob,
        *,
        state: str | None = None,
        message: str | None = None,
        finished: bool = False,
    ) -> None:
        values: dict[str, Any] = dict(job.counts)
        values["errors"] = job.errors
        values["updated_at"] = datetime.now(UTC)
        if state is not None:
            values["state"] = state
        if message is not None:
            values["message"] = _printable(message)
        if finished:
            values["finished_at"] = datetime.now(UTC)
            if state == "completed":
                values["bytes_done"] = job.path.stat().st_size if job.path.exists() else 0
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(models.imports).where(models.imports.c.id == job.id).values(**values)
            )


def _printable(text: str) -> str:
    """Text safe to store and show (file content can put NUL or control bytes in a message)."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)[:1000]


def _copy_upload(source: Any, target: Path) -> None:
    source.seek(0)
    with target.open("wb") as out:
        shutil.copyfileobj(source, out, COPY_CHUNK)


def _format_from_name(name: str) -> str | None:
    lowered = name.lower()
    if lowered.endswith((".parquet", ".pq")):
        return "parquet"
    if lowered.endswith((".csv", ".csv.gz", ".txt", ".tsv")):
        return "csv"
    return None


@contextlib.asynccontextmanager
async def running(runner: ImportRunner) -> AsyncIterator[ImportRunner]:
    """Lifespan helper: fail jobs a dead process left behind; cancel ours at shutdown."""
    with contextlib.suppress(Exception):
        await runner.fail_stale()
    try:
        yield runner
    finally:
        await runner.shutdown()
