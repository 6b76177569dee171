"""``algotrade migrate beta1``: Beta1's SQLite database into the platform, with its report.

Run where the services' packages are installed (the workspace, or an image holding them): it
writes through each service's import entry point, straight to that service's database and S3,
so the platform need not be running, and a running one serves the migrated rows at once.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import orjson
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError
from rich.console import Console
from sqlalchemy.exc import DBAPIError

from algotrade.errors import AlgoTradeError
from algotrade_devstack.beta1.migration import BATCH_SIZE


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:500] or type(exc).__name__


def beta1(
    source: Path,
    *,
    dry_run: bool,
    verify: bool,
    report_path: Path | None,
    state_dir: Path,
    batch_size: int = BATCH_SIZE,
) -> int:
    """Exit code: 0 when every row is migrated, present or skipped with a reason (and, with
    ``verify``, the target matches); 1 when something would be lost; 2 for a bad source; 3
    when the platform could not be reached or configured (nothing is lost: run it again)."""
    from algotrade_devstack.beta1.report import print_report
    from algotrade_devstack.beta1.source import read_beta1
    from algotrade_devstack.beta1.targets import apply_stack_env

    console = Console(stderr=True)
    if not source.is_file():
        console.print(f"[red]no such file[/]: {source}")
        return 2
    try:
        data = read_beta1(source)
    except sqlite3.DatabaseError as exc:
        console.print(f"[red]{source} is not a Beta1 database[/]: {exc}")
        return 2
    apply_stack_env(state_dir)
    try:
        report = asyncio.run(_run(data, str(source), dry_run, verify, batch_size))
    except (
        AlgoTradeError,
        OSError,
        DBAPIError,
        ValidationError,
        BotoCoreError,
        ClientError,
    ) as exc:
        # What was committed stays committed: running the command again resumes.
        console.print(
            f"[red]the migration stopped[/]: {_one_line(exc)}\n"
            f"Is the platform running (make run), or its environment set (DATABASE_URL, ...)? "
            f"Batches already written are kept; run the command again to resume."
        )
        return 3
    if report_path is not None:
        report_path.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    print_report(report, console)
    return 1 if report["lost"] else 0


async def _run(
    data: Any, source: str, dry_run: bool, verify: bool, batch_size: int
) -> dict[str, Any]:
    from algotrade.beta1 import Kind
    from algotrade_devstack.beta1.migration import migrate
    from algotrade_devstack.beta1.report import build_report
    from algotrade_devstack.beta1.source import TABLES
    from algotrade_devstack.beta1.targets import open_targets
    from algotrade_devstack.beta1.verify import verify as verify_target

    def progress(kind: Kind, done: int, total: int) -> None:
        print(f"{TABLES[kind]} {done}/{total}", flush=True)

    async with open_targets() as targets:
        result = await migrate(
            data, targets, dry_run=dry_run, batch_size=batch_size, progress=progress
        )
        refused = frozenset(
            (o.kind, o.legacy_id)
            for outcomes in result.outcomes.values()
            for o in outcomes.values()
            if o.state == "skipped"
        )
        verification = (
            await verify_target(data, targets, refused=refused) if verify and not dry_run else None
        )
    return build_report(source, data, result, verification)
