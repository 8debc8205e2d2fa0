"""Blob stores: where receipts and closed cases' archives are kept, outside Temporal.

Two kinds, picked by a URL (MAKEGOOD_RECEIPT_STORE, MAKEGOOD_ARCHIVE_STORE):
- a local folder (`file:///abs/path`, or a plain path; the default is under `data/`);
- an S3-compatible bucket (`s3://bucket/prefix`; endpoint from MAKEGOOD_S3_ENDPOINT_URL for
  MinIO and the like; credentials from the standard AWS chain). Needs the `s3` extra (boto3).

Keys are relative paths of checked segments, so a key built from a case id or a digest can never
leave the store's folder or prefix. Writes are whole-object and idempotent: putting the same key
twice with the same bytes is harmless, which is what a retried activity does.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlparse

SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._%+=@-]{0,199}$")


class BlobMissing(KeyError):
    """No object under this key."""


class BlobStoreError(Exception):
    """The store could not be used (unreachable, denied, misconfigured): says which and why."""


def check_key(key: str) -> str:
    parts = key.split("/")
    if not key or any(not SEGMENT.match(p) or p in (".", "..") for p in parts):
        raise ValueError(f"not a safe blob key: {key!r}")
    return key


class BlobStore(Protocol):
    """What receipts and archives need of a store."""

    @property
    def where(self) -> str:
        """For messages: `folder data/receipts`, `s3://bucket/prefix`."""
        ...

    async def put(self, key: str, data: bytes, content_type: str) -> None: ...

    async def get(self, key: str) -> bytes: ...

    async def exists(self, key: str) -> bool: ...

    async def keys(self, prefix: str = "") -> list[str]: ...


@dataclass
class FolderStore:
    root: Path

    @property
    def where(self) -> str:
        return f"folder {self.root}"

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await asyncio.to_thread(self._put, self._path(key), data)

    @staticmethod
    def _put(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written beside the target and renamed: a reader never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".put-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    async def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            raise BlobMissing(key) from None

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._path(key).is_file)

    async def keys(self, prefix: str = "") -> list[str]:
        def walk() -> list[str]:
            if not self.root.is_dir():
                return []
            found = (
                p.relative_to(self.root).as_posix()
                for p in self.root.rglob("*")
                if p.is_file() and not p.name.startswith(".put-")
            )
            return sorted(k for k in found if k.startswith(prefix))

        return await asyncio.to_thread(walk)


@dataclass
class S3Store:
    bucket: str
    prefix: str = ""
    endpoint_url: str | None = None
    region: str | None = None

    def __post_init__(self) -> None:
        try:
            import boto3  # the `s3` extra: only a deployment that uses a bucket needs it
        except ImportError:
            raise BlobStoreError(
                f"{self.where} needs boto3: install makegood with the s3 extra "
                "(pip install 'makegood[s3]')"
            ) from None
        self._client: Any = boto3.client(
            "s3", endpoint_url=self.endpoint_url, region_name=self.region
        )

    @property
    def where(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def _key(self, key: str) -> str:
        return f"{self.prefix.strip('/')}/{check_key(key)}".lstrip("/")

    async def _call(self, method: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return await asyncio.to_thread(getattr(self._client, method), **kwargs)
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "NotFound"):
                raise BlobMissing(kwargs.get("Key", "")) from None
            raise BlobStoreError(f"{self.where}: {method} failed: {code or err}") from None
        except BotoCoreError as err:
            raise BlobStoreError(f"{self.where}: {method} failed: {err}") from None

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await self._call(
            "put_object",
            Bucket=self.bucket,
            Key=self._key(key),
            Body=data,
            ContentType=content_type,
        )

    async def get(self, key: str) -> bytes:
        reply = await self._call("get_object", Bucket=self.bucket, Key=self._key(key))
        return await asyncio.to_thread(reply["Body"].read)

    async def exists(self, key: str) -> bool:
        try:
            await self._call("head_object", Bucket=self.bucket, Key=self._key(key))
        except BlobMissing:
            return False
        return True

    async def keys(self, prefix: str = "") -> list[str]:
        base = self._key("x")[:-1]  # the store's prefix with its slash
        found: list[str] = []
        token: dict[str, str] = {}
        while True:
            page = await self._call(
                "list_objects_v2", Bucket=self.bucket, Prefix=base + prefix, **token
            )
            found += [obj["Key"][len(base) :] for obj in page.get("Contents", [])]
            if not page.get("IsTruncated"):
                return sorted(found)
            token = {"ContinuationToken": page["NextContinuationToken"]}


def open_store(url: str, *, default: Path, endpoint_url: str | None = None) -> BlobStore:
    """The store a setting names: empty → the default folder; `file://`, a path, or `s3://`."""
    if not url:
        return FolderStore(default)
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise BlobStoreError(f"{url}: an s3:// store needs a bucket (s3://bucket/prefix)")
        return S3Store(parsed.netloc, parsed.path.strip("/"), endpoint_url=endpoint_url)
    if parsed.scheme == "file":
        return FolderStore(Path(unquote(parsed.path)))
    if parsed.scheme == "":
        return FolderStore(Path(url))
    raise BlobStoreError(f"{url}: a store is a folder path, file:///path or s3://bucket/prefix")
