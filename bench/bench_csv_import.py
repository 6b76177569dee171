"""CSV import benchmark: rows/s from a local file into history (PostgreSQL) and windows (Redis).

Run: ``uv run --frozen python bench/bench_csv_import.py [--rows 1000000] [--chunk-rows 5000]``

Writes a synthetic 1m OHLCV file (ISO timestamps, like the demo data) to a temp dir and imports
it, and ``data/spy-1h.csv``, through the service's own import path (`ImportRunner.from_path`:
parse, validate, one transaction per chunk into history and the outbox, then the Redis window)
inside an app started in this process against real PostgreSQL, Redis and Kafka (from
``DATABASE_URL`` / ``REDIS_URL`` / ``KAFKA_BOOTSTRAP``, else embedded, as the other benches).
Each file is imported twice into fresh symbols: with the previous row-by-row ``csv``-module
parser (kept below as `old_read_csv_chunks`) and with the pyarrow reader the service now uses.
Parsing alone (no database) is timed for both too. Goal: at least 500,000 rows/s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import gzip
import io
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from algotrade import epoch
from algotrade.bars import Bars
from algotrade.db import asyncpg_url
from algotrade.migrations import upgrade
from algotrade.topics import ensure_topics
from algotrade_devstack.infra import provide_kafka, provide_postgres, provide_redis
from algotrade_devstack.stack import ensure_database
from algotrade_testkit.services import key_settings, serve_in_process
from market_data_service import imports as imports_module
from market_data_service.bar_files import (
    MAX_LINE_BYTES,
    PRICE_NAMES,
    BarFileError,
    Chunk,
    Layout,
    _Counting,
    _sniff_delimiter,
    _yyyymmdd,
    parse_time_text,
    read_csv_chunks,
    resolve_layout,
)
from market_data_service.batch import BarBatch, Rejection
from market_data_service.config import Settings
from market_data_service.main import create_app
from market_data_service.services import MarketServices

ROOT = Path(__file__).resolve().parents[1]
T0 = 1_577_836_800  # 2020-01-01T00:00:00Z
GOAL = 500_000

Reader = Callable[..., Iterator[Chunk]]


# -- the previous parser (market_data_service.bar_files before pyarrow), for comparison --------


def old_read_csv_chunks(
    path: Path, *, symbol: str, timeframe: str, chunk_rows: int
) -> Iterator[Chunk]:
    with path.open("rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        counter = _Counting(raw)
        binary: IO[bytes] = io.BufferedReader(counter)
        if gzipped:
            binary = gzip.GzipFile(fileobj=binary)  # type: ignore[assignment]
        text = io.TextIOWrapper(binary, encoding="utf-8-sig", errors="replace", newline="")
        header_line = text.readline(MAX_LINE_BYTES)
        if not header_line.strip():
            raise BarFileError("the file is empty (a header row is required)")
        delimiter = _sniff_delimiter(header_line)
        header = next(csv.reader([header_line], delimiter=delimiter))
        layout = resolve_layout(header)
        reader = csv.reader(text, delimiter=delimiter, strict=False)
        width = len(header)
        while True:
            chunk = _old_rows(reader, layout, width, chunk_rows)
            if chunk is None:
                return
            lines, cells, rejections = chunk
            yield _old_chunk(symbol, timeframe, lines, cells, rejections, counter.count)


def _old_rows(
    reader: Any, layout: Layout, width: int, limit: int
) -> tuple[list[int], list[tuple[Any, ...]], list[Rejection]] | None:
    lines: list[int] = []
    cells: list[tuple[Any, ...]] = []
    rejections: list[Rejection] = []
    time_col, date_col = layout.time, layout.date
    cols = [layout.prices[f] for f in ("open", "high", "low", "close", "volume")]
    seen = 0
    for row in reader:
        line = reader.line_num + 1
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        seen += 1
        if len(row) < width:
            rejections.append(
                Rejection(line, "invalid_bar", f"expected {width} columns, found {len(row)}")
            )
        else:
            if date_col is None:
                stamp = _yyyymmdd(row[time_col])
            else:
                stamp = f"{_yyyymmdd(row[date_col])} {row[time_col].strip()}"
            try:
                ts = parse_time_text(stamp)
            except ValueError as exc:
                rejections.append(Rejection(line, "invalid_timestamp", str(exc)))
            else:
                try:
                    values = tuple(float(row[c]) for c in cols)
                except ValueError:
                    name = next(iter(PRICE_NAMES))
                    rejections.append(Rejection(line, "invalid_number", f"{name} not a number"))
                else:
                    lines.append(line)
                    cells.append((ts, *values))
        if seen >= limit:
            break
    if seen == 0:
        return None
    return lines, cells, rejections


def _old_chunk(
    symbol: str,
    timeframe: str,
    lines: list[int],
    cells: list[tuple[Any, ...]],
    rejections: list[Rejection],
    bytes_done: int,
) -> Chunk:
    if cells:
        matrix = np.array([c[1:] for c in cells], dtype=np.float64).reshape(len(cells), 5)
        ts = np.fromiter((c[0] for c in cells), np.int64, len(cells))
    else:
        matrix = np.zeros((0, 5))
        ts = np.zeros(0, np.int64)
    bars = Bars.from_columns(epoch.ms_from_seconds(ts), *(matrix[:, i] for i in range(5)))
    batch = BarBatch.of_series(symbol, timeframe, bars, index=np.asarray(lines, np.int64))
    valid, invalid = batch.validate()
    return Chunk(valid, sorted(rejections + invalid, key=lambda r: r.index), len(cells), bytes_done)


# -- the bench ---------------------------------------------------------------------------------


def write_minute_file(path: Path, rows: int) -> None:
    """``rows`` consecutive 1m bars, a random walk, ISO-8601 UTC times (~58 bytes a row)."""
    rng = np.random.default_rng(7)
    close = 100 + np.cumsum(rng.normal(0, 0.05, rows))
    opens = np.concatenate([[100.0], close[:-1]])
    high = np.maximum(opens, close) + 0.01
    low = np.minimum(opens, close) - 0.01
    volume = rng.integers(1, 10_000, rows)
    stamps = np.datetime_as_string((T0 + 60 * np.arange(rows)).astype("datetime64[s]"), "s")
    with path.open("w") as out:
        out.write("timestamp,open,high,low,close,volume\n")
        out.writelines(
            f"{s}Z,{o:.4f},{h:.4f},{lo:.4f},{c:.4f},{v}\n"
            for s, o, h, lo, c, v in zip(stamps, opens, high, low, close, volume, strict=True)
        )


def parse_only(reader: Reader, path: Path, timeframe: str, chunk_rows: int) -> tuple[int, float]:
    started = time.perf_counter()
    rows = sum(
        len(c.bars) for c in reader(path, symbol="P", timeframe=timeframe, chunk_rows=chunk_rows)
    )
    return rows, time.perf_counter() - started


async def import_file(
    market: MarketServices, reader: Reader, name: str, symbol: str, timeframe: str
) -> tuple[dict[str, Any], float]:
    imports_module.read_csv_chunks = reader  # type: ignore[assignment]
    started = time.perf_counter()
    job_id = await market.imports.from_path(
        user_id="bench", relative=name, symbol=symbol, timeframe=timeframe, atomic=False
    )
    await market.imports.wait_idle()
    elapsed = time.perf_counter() - started
    return await market.imports.get("bench", job_id), elapsed


async def main(args: argparse.Namespace) -> None:
    run = uuid.uuid4().hex[:8]
    state = Path(tempfile.mkdtemp(prefix="bench-csv-"))
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(shutil.rmtree, state, ignore_errors=True)
        pg = provide_postgres(state, os.environ.get("DATABASE_URL"), allow_local=True)
        stack.callback(pg.stop)
        redis = provide_redis(state, os.environ.get("REDIS_URL"), allow_local=True)
        stack.callback(redis.stop)
        kafka = provide_kafka(
            state, os.environ.get("KAFKA_BOOTSTRAP"), cache_root=ROOT / ".algotrade"
        )
        stack.callback(kafka.stop)
        database_url = asyncpg_url(await ensure_database(pg.url, f"bench_csv_{run}"))
        await upgrade(database_url, "market_data_service", "market")
        topic_prefix = f"bench{run}."
        await ensure_topics(kafka.url, topic_prefix)
        files = state / "files"
        files.mkdir()
        big = files / "minutes.csv"
        write_minute_file(big, args.rows)
        shutil.copy(ROOT / "data" / "spy-1h.csv", files / "spy-1h.csv")
        settings = Settings(
            **key_settings(),
            environment="local",
            database_url=database_url,
            redis_url=redis.url,
            redis_prefix=f"bench:{run}:",
            kafka_bootstrap=kafka.url,
            kafka_topic_prefix=topic_prefix,
            import_dir=files,
            import_chunk_rows=args.chunk_rows,
            log_level="WARNING",
        )
        print(
            f"CSV import benchmark (run {run}; {os.cpu_count()} CPUs; load average "
            f"{os.getloadavg()[0]:.2f}; {args.chunk_rows:,}-row chunks)"
        )
        print(f"  postgres: {pg.source}\n  redis:    {redis.source}")
        kind = "STAND-IN, not the real broker: " if kafka.stand_in else ""
        print(f"  kafka:    {kind}{kafka.source}")
        print(
            f"  files:    {big.name} {args.rows:,} rows, {big.stat().st_size / 1e6:.1f} MB; "
            "spy-1h.csv 40,832 rows"
        )
        parsers: dict[str, Reader] = {
            "old csv module": old_read_csv_chunks,
            "pyarrow": read_csv_chunks,
        }
        # Warm both (numba validation kernels compile on first use).
        for reader in parsers.values():
            parse_only(reader, files / "spy-1h.csv", "1h", args.chunk_rows)
        print("\nparse + validate only (no database)")
        for label, reader in parsers.items():
            for name, tf in (("minutes.csv", "1m"), ("spy-1h.csv", "1h")):
                rows, seconds = parse_only(reader, files / name, tf, args.chunk_rows)
                print(
                    f"  {label:15} {name:12} {rows:>9,} rows {seconds:7.2f} s "
                    f"{rows / seconds:>11,.0f} rows/s"
                )
        app = create_app(settings)
        async with serve_in_process(app, timeout_seconds=120):
            market: MarketServices = app.state.services
            print("\nimport into history + windows (ImportRunner.from_path, end to end)")
            for label, reader in parsers.items():
                tag = "OLD" if reader is old_read_csv_chunks else "NEW"
                for name, tf in (("minutes.csv", "1m"), ("spy-1h.csv", "1h")):
                    job, seconds = await import_file(market, reader, name, f"{tag}{tf.upper()}", tf)
                    rows = job["accepted"]
                    assert job["state"] == "completed" and job["rows_rejected"] == 0, job
                    verdict = (
                        ""
                        if label == "old csv module" or name != "minutes.csv"
                        else (
                            "  (goal met)"
                            if rows / seconds >= GOAL
                            else f"  (below the {GOAL:,} goal)"
                        )
                    )
                    print(
                        f"  {label:15} {name:12} {rows:>9,} rows {seconds:7.2f} s "
                        f"{rows / seconds:>11,.0f} rows/s{verdict}"
                    )
            window = await market.cache.latest("bench", "NEW1M", "1m", 10)  # bench's own
            print(
                f"\n  window NEW1M/1m holds the newest bars: {len(window.payloads)} of the last 10"
            )
        imports_module.read_csv_chunks = read_csv_chunks  # type: ignore[assignment]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--chunk-rows", type=int, default=5_000)
    asyncio.run(main(parser.parse_args()))
