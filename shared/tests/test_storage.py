"""The object store against moto's S3 server."""

from __future__ import annotations

import httpx
import pyarrow as pa
import pytest

from algotrade.errors import NotFound
from algotrade.storage import ObjectStore


@pytest.fixture
async def store(s3_endpoint: str, s3_bucket: str) -> ObjectStore:
    s = ObjectStore(
        bucket=s3_bucket,
        endpoint_url=s3_endpoint,
        region="us-east-1",
        access_key="testing",
        secret_key="testing",
    )
    await s.ensure_bucket()
    await s.ensure_bucket()  # idempotent
    return s


async def test_bytes_json_and_parquet_round_trip(store: ObjectStore) -> None:
    await store.put_bytes("a/b.bin", b"\x00\x01")
    assert await store.get_bytes("a/b.bin") == b"\x00\x01"
    await store.put_json("a/summary.json", {"sharpe": 1.5, "trades": [1, 2]})
    assert await store.get_json("a/summary.json") == {"sharpe": 1.5, "trades": [1, 2]}
    table = pa.table({"ts": pa.array([1, 2, 3], pa.int64()), "equity": [1.0, 1.1, 0.9]})
    await store.put_parquet("a/equity.parquet", table)
    assert (await store.get_parquet("a/equity.parquet")).equals(table)
    assert sorted(await store.list_keys("a/")) == ["a/b.bin", "a/equity.parquet", "a/summary.json"]


async def test_missing_object_is_not_found(store: ObjectStore) -> None:
    with pytest.raises(NotFound):
        await store.get_bytes("nope")
    assert not await store.exists("nope")


async def test_presigned_get_url_serves_the_object(store: ObjectStore) -> None:
    await store.put_bytes("reports/r.txt", b"hello", "text/plain")
    url = store.presigned_get("reports/r.txt", expires_seconds=60)
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    assert response.status_code == 200
    assert response.content == b"hello"


async def test_delete_prefix_removes_only_that_prefix(store: ObjectStore) -> None:
    for key in ("u1/j1/a", "u1/j1/b", "u1/j2/a"):
        await store.put_bytes(key, b"x")
    assert await store.delete_prefix("u1/j1/") == 2
    assert await store.list_keys("u1/") == ["u1/j2/a"]
