"""File imports: uploads and server paths, formats, bad rows by line, atomic mode, ownership."""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from market_data_testkit import DATA, Service
from sqlalchemy import func, select, text

from algotrade_testkit.plugin import wait_for
from market_data_service import history, models

CSV = (
    "timestamp,open,high,low,close,volume\n"
    "2024-01-01T00:00:00Z,1,2,0.5,1.5,10\n"
    "2024-01-01T00:01:00Z,1,2,0.5,1.5,-3\n"  # line 3: negative volume
    "2024-01-01T00:02:00Z,1,2\n"  # line 4: too few columns
    "2024-01-01T00:03:00Z,abc,2,0.5,1.5,10\n"  # line 5: not a number
    "\n"  # line 6: blank, skipped
    "2024-01-01T00:04:30Z,1,2,0.5,1.5,10\n"  # line 7: misaligned
    "someday,1,2,0.5,1.5,10\n"  # line 8: bad time
    "2024-01-01 00:05:00,1,2,0.5,1.5,nan\n"  # line 9: NaN
    "2024-01-01 00:06:00,1,2,0.5,1.5,4\n"  # naive time: UTC
)


async def upload(
    service: Service,
    content: bytes,
    *,
    filename: str = "bars.csv",
    user: str = "u1",
    **fields: str,
) -> Any:
    data = {"symbol": "X", "timeframe": "1m", **fields}
    return await service.client.post(
        "/api/market/imports",
        files={"file": (filename, content, "application/octet-stream")},
        data=data,
        headers=service.headers(user),
    )


async def finished(service: Service, import_id: str, user: str = "u1") -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        body: dict[str, Any] = (
            await service.client.get(
                f"/api/market/imports/{import_id}", headers=service.headers(user)
            )
        ).json()
        return body if body["state"] in ("completed", "failed") else None

    result: dict[str, Any] = await wait_for(done, within=30)
    return result


async def count(service: Service, table: Any = models.bars) -> int:
    async with service.market.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(table)) or 0)


async def test_bad_rows_are_reported_by_line_and_valid_rows_are_stored(service: Service) -> None:
    response = await upload(service, CSV.encode())
    assert response.status_code == 202, response.text
    job = await finished(service, response.json()["id"])
    assert job["state"] == "completed"
    assert [(e["line"], e["reason"]) for e in job["errors"]] == [
        (3, "negative_volume"),
        (4, "invalid_bar"),
        (5, "invalid_number"),
        (7, "misaligned_timestamp"),
        (8, "invalid_timestamp"),
        (9, "non_finite"),
    ]
    assert (job["rows_read"], job["rows_rejected"], job["accepted"]) == (8, 6, 2)
    assert job["progress"] == 1.0
    assert await count(service) == 2


async def test_atomic_import_with_a_bad_row_writes_nothing(service: Service) -> None:
    response = await upload(service, CSV.encode(), atomic="true")
    job = await finished(service, response.json()["id"])
    assert job["state"] == "failed"
    assert "nothing was written" in job["message"]
    assert job["errors"][0]["line"] == 3
    assert job["accepted"] == 0
    assert await count(service) == 0
    assert await count(service, models.series) == 0
    async with service.market.sessions() as session:
        assert await session.scalar(text("SELECT count(*) FROM market.outbox")) == 0


async def test_atomic_import_of_a_clean_file_commits_once(service: Service) -> None:
    clean = "\n".join(line for line in CSV.splitlines()[:2]) + "\n"
    job = await finished(service, (await upload(service, clean.encode(), atomic="1")).json()["id"])
    assert (job["state"], job["accepted"]) == ("completed", 1)
    latest = (await service.get("/api/market/symbols/X/latest?timeframe=1m")).json()
    assert len(latest["bars"]) == 1


async def test_a_server_path_import_streams_real_data_and_is_idempotent(
    make_service: Any,
) -> None:
    async with make_service(import_dir=DATA, import_chunk_rows=10_000) as service:
        body = {"path": "spy-1h.csv", "symbol": "SPY", "timeframe": "1h"}
        first = await service.client.post(
            "/api/market/imports", json=body, headers=service.headers()
        )
        assert first.status_code == 202
        assert first.headers["location"] == f"/api/market/imports/{first.json()['id']}"
        job = await finished(service, first.json()["id"])
        assert (job["state"], job["rows_read"], job["accepted"]) == ("completed", 40832, 40832)
        again = await service.client.post(
            "/api/market/imports", json=body, headers=service.headers()
        )
        job = await finished(service, again.json()["id"])
        assert (job["accepted"], job["duplicate"]) == (0, 40832)


@pytest.mark.parametrize("path", ["../README.md", "/etc/passwd", "sub/../../x.csv", "escape.csv"])
async def test_paths_outside_the_import_directory_are_refused(
    make_service: Any, tmp_path: Path, path: str
) -> None:
    root = tmp_path / "imports"
    root.mkdir()
    os.symlink("/etc/hostname", root / "escape.csv")
    async with make_service(import_dir=root) as service:
        response = await service.client.post(
            "/api/market/imports",
            json={"path": path, "symbol": "X", "timeframe": "1m"},
            headers=service.headers(),
        )
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "path_outside_import_dir"


async def test_missing_files_and_disabled_paths(make_service: Any, tmp_path: Path) -> None:
    async with make_service(import_dir=tmp_path) as service:
        nul = await service.client.post(
            "/api/market/imports",
            json={"path": "a\x00b.csv", "symbol": "X", "timeframe": "1m"},
            headers=service.headers(),
        )
        assert nul.status_code == 400  # strict JSON: NUL is never accepted
        body = {"path": "nope.csv", "symbol": "X", "timeframe": "1m"}
        response = await service.client.post(
            "/api/market/imports", json=body, headers=service.headers()
        )
        assert response.status_code == 404
    async with make_service() as service:
        response = await service.client.post(
            "/api/market/imports", json=body, headers=service.headers()
        )
        assert (response.status_code, response.json()["code"]) == (403, "import_paths_disabled")


async def test_common_file_variants(service: Service) -> None:
    variants = {
        # MetaTrader export: tab separated, <DATE> and <TIME>, dotted dates, tick volume
        "mt.csv": b"<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\n"
        b"2024.01.02\t00:00:00\t1\t2\t0.5\t1.5\t7\n2024.01.02\t00:01:00\t1\t2\t0.5\t1.5\t8\n",
        "ms.csv": b"time;o;h;l;c;v\n1704153720000;1;2;0.5;1.5;1\n",  # epoch ms, semicolons
        "s.csv.gz": gzip.compress(b"Date,Open,High,Low,Close,Volume\n1704153780,1,2,0.5,1.5,1\n"),
        "d.csv": b"date,open,high,low,close,adj close,volume\n20240102,1,2,0.5,1.5,1.4,9\n",
    }
    for name, content in variants.items():
        timeframe = "1d" if name == "d.csv" else "1m"
        job = await finished(
            service,
            (await upload(service, content, filename=name, timeframe=timeframe)).json()["id"],
        )
        assert (job["state"], job["accepted"], job["errors"]) == (
            "completed",
            job["rows_read"],
            [],
        ), name
    async with service.market.sessions() as session:
        minutes = await history.read_range(session, "u1", "X", "1m", 0, 2**40, limit=10)
        days = await history.read_range(session, "u1", "X", "1d", 0, 2**40, limit=10)
    assert minutes.seconds().tolist() == [
        1_704_153_600,
        1_704_153_660,
        1_704_153_720,
        1_704_153_780,
    ]
    assert days.seconds().tolist() == [1_704_153_600]


async def test_parquet_with_typed_and_epoch_times(service: Service, tmp_path: Path) -> None:
    typed = pa.table(
        {
            "timestamp": pa.array(
                [1_704_153_600_000, 1_704_153_660_000, None], pa.timestamp("ms", tz="UTC")
            ),
            "open": [1.0, 1.0, 1.0],
            "high": [2.0, 2.0, 2.0],
            "low": [0.5, 0.5, 0.5],
            "close": [1.5, None, 1.5],
            "volume": [1.0, 1.0, 1.0],
        }
    )
    epoch = pa.table(
        {"t": [1_704_153_720], "o": [1.0], "h": [2.0], "l": [0.5], "c": [1.5], "v": [3]}
    )
    for name, table in (("typed.parquet", typed), ("epoch.parquet", epoch)):
        pq.write_table(table, tmp_path / name)
        job = await finished(
            service,
            (await upload(service, (tmp_path / name).read_bytes(), filename=name)).json()["id"],
        )
        assert job["state"] == "completed", job
        if name == "typed.parquet":
            assert job["accepted"] == 1
            assert [(e["line"], e["reason"]) for e in job["errors"]] == [
                (2, "invalid_number"),
                (3, "invalid_timestamp"),
            ]
        else:
            assert job["accepted"] == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"when,price\n2024-01-01,1\n", "missing column"),
        (b'timestamp,open,high,low,close,volume\n"unterminated,1,2,3,4,5\n', ""),
        (b"\x00\x01\x02 binary garbage", "missing column"),
        (b"PAR1 not really parquet", "Parquet"),
    ],
)
async def test_malformed_files_fail_the_job_with_a_reason(
    service: Service, content: bytes, message: str
) -> None:
    name = "bars.parquet" if content.startswith(b"PAR1") else "bars.csv"
    job = await finished(service, (await upload(service, content, filename=name)).json()["id"])
    if message:
        assert job["state"] == "failed" and message in job["message"]
    else:  # an unterminated quote swallows the rest: reported as a bad row, nothing stored
        assert job["accepted"] == 0
    assert await count(service) == 0


@pytest.mark.parametrize(
    ("fields", "status"),
    [({"symbol": "no way"}, 422), ({"timeframe": "7m"}, 422), ({"atomic": "perhaps"}, 422)],
)
async def test_bad_form_fields_are_refused(
    service: Service, fields: dict[str, str], status: int
) -> None:
    response = await upload(service, CSV.encode(), **fields)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("atomic", ["true", 1], ids=["string", "number"])
async def test_a_json_import_flag_of_another_json_type_is_refused(
    service: Service, atomic: Any
) -> None:
    body = {"path": "bars.csv", "symbol": "X", "timeframe": "1m", "atomic": atomic}
    response = await service.client.post(
        "/api/market/imports", json=body, headers=service.headers()
    )
    assert response.status_code == 422, response.text
    assert [e["loc"] for e in response.json()["errors"]] == [["body", "atomic"]]


async def test_uploads_need_a_file_a_known_type_and_a_sane_size(make_service: Any) -> None:
    async with make_service(import_max_upload_bytes=4096) as service:
        empty = await upload(service, b"")
        assert empty.status_code == 400
        text_body = await service.client.post(
            "/api/market/imports",
            content=b"x",
            headers={**service.headers(), "content-type": "text/plain"},
        )
        assert text_body.status_code == 400
        big = await upload(service, b"timestamp,open,high,low,close,volume\n" + b"x" * 10_000)
        assert big.status_code == 413
        assert big.headers["content-type"] == "application/problem+json"
        assert await count(service, models.imports) == 0


async def test_imports_belong_to_their_user(service: Service) -> None:
    mine = (await upload(service, CSV.encode(), user="alice")).json()["id"]
    await finished(service, mine, user="alice")
    theirs = await service.client.get(f"/api/market/imports/{mine}", headers=service.headers("bob"))
    assert theirs.status_code == 404
    listed = await service.client.get("/api/market/imports", headers=service.headers("bob"))
    assert listed.json() == {"imports": []}
    own = await service.client.get("/api/market/imports", headers=service.headers("alice"))
    assert [i["id"] for i in own.json()["imports"]] == [mine]
