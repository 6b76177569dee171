"""S3 object store over boto3: bytes, JSON and Parquet objects, presigned GET URLs.

boto3 is synchronous, so every call runs in a worker thread and never blocks the event loop.
"""

from __future__ import annotations

import asyncio
import io
from typing import TYPE_CHECKING, Any

import boto3
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from algotrade.errors import NotFound

if TYPE_CHECKING:
    from algotrade.config import ServiceSettings


class ObjectStore:
    """One bucket in S3 (or MinIO, or moto's server)."""

    def __init__(
        self,
        *,
        bucket: str,
        endpoint_url: str | None,
        region: str,
        access_key: str,
        secret_key: str,
    ) -> None:
        self.bucket = bucket
        self._client: Any = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=BotoConfig(
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=3,
                read_timeout=30,
                s3={"addressing_style": "path"},
            ),
        )

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> ObjectStore:
        """The bucket a service's settings name (``S3_*``)."""
        return cls(
            bucket=settings.s3_bucket,
            endpoint_url=settings.s3_endpoint,
            region=settings.s3_region,
            access_key=settings.s3_access_key.get_secret_value(),
            secret_key=settings.s3_secret_key.get_secret_value(),
        )

    async def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist yet."""

        def create() -> None:
            try:
                self._client.head_bucket(Bucket=self.bucket)
            except ClientError:
                self._client.create_bucket(Bucket=self.bucket)

        await asyncio.to_thread(create)

    async def ping(self) -> None:
        await asyncio.to_thread(self._client.head_bucket, Bucket=self.bucket)

    async def put_bytes(
        self, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> None:
        await asyncio.to_thread(
            self._client.put_object,
            Bucket=self.bucket,
            Key=key,
            Body=data,
            ContentType=content_type,
        )

    async def get_bytes(self, key: str) -> bytes:
        def get() -> bytes:
            try:
                response = self._client.get_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                    raise NotFound(f"object {key} not found") from None
                raise
            body: bytes = response["Body"].read()
            return body

        return await asyncio.to_thread(get)

    async def exists(self, key: str) -> bool:
        def head() -> bool:
            try:
                self._client.head_object(Bucket=self.bucket, Key=key)
            except ClientError:
                return False
            return True

        return await asyncio.to_thread(head)

    async def put_json(self, key: str, value: Any) -> None:
        await self.put_bytes(key, orjson.dumps(value), "application/json")

    async def get_json(self, key: str) -> Any:
        return orjson.loads(await self.get_bytes(key))

    async def put_parquet(self, key: str, table: pa.Table) -> None:
        sink = io.BytesIO()
        pq.write_table(table, sink, compression="zstd")
        await self.put_bytes(key, sink.getvalue(), "application/vnd.apache.parquet")

    async def get_parquet(self, key: str) -> pa.Table:
        return pq.read_table(io.BytesIO(await self.get_bytes(key)))

    async def list_keys(self, prefix: str) -> list[str]:
        def list_all() -> list[str]:
            keys: list[str] = []
            paginator = self._client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                keys.extend(obj["Key"] for obj in page.get("Contents", []))
            return keys

        return await asyncio.to_thread(list_all)

    async def delete_prefix(self, prefix: str) -> int:
        keys = await self.list_keys(prefix)
        for start in range(0, len(keys), 1000):
            chunk = [{"Key": k} for k in keys[start : start + 1000]]
            await asyncio.to_thread(
                self._client.delete_objects, Bucket=self.bucket, Delete={"Objects": chunk}
            )
        return len(keys)

    def presigned_get(self, key: str, expires_seconds: int = 3600) -> str:
        url: str = self._client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_seconds
        )
        return url
