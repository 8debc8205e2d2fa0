"""The blob stores receipts and archives live in: a local folder, and an S3 bucket served over
real HTTP by moto's S3 server (the same requests boto3 sends to AWS or MinIO)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from makegood.adapters.blobs import (
    BlobMissing,
    BlobStore,
    BlobStoreError,
    FolderStore,
    S3Store,
    check_key,
    open_store,
)
from tests.api_harness import free_port


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test-key-id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture(params=["folder", "s3"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, aws_env: None
) -> AsyncIterator[BlobStore]:
    if request.param == "folder":
        yield FolderStore(tmp_path / "blobs")
        return
    endpoint = request.getfixturevalue("s3_endpoint")
    bucket = f"b-{tmp_path.name.lower().replace('_', '-')[:40]}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
    yield S3Store(bucket, "makegood/receipts", endpoint_url=endpoint)


async def test_put_get_list_and_missing(store: BlobStore) -> None:
    await store.put("sha256/ab/abcdef", b"%PDF-1.7 receipt", "application/pdf")
    await store.put("sha256/cd/cdef01", b"\x89PNG...", "image/png")
    await store.put("sha256/ab/abcdef", b"%PDF-1.7 receipt", "application/pdf")  # a retry
    assert await store.get("sha256/ab/abcdef") == b"%PDF-1.7 receipt"
    assert await store.exists("sha256/cd/cdef01")
    assert not await store.exists("sha256/ee/eeee")
    assert await store.keys("sha256/") == ["sha256/ab/abcdef", "sha256/cd/cdef01"]
    assert await store.keys("sha256/cd") == ["sha256/cd/cdef01"]
    with pytest.raises(BlobMissing):
        await store.get("sha256/ee/eeee")


@pytest.mark.parametrize("key", ["../etc/passwd", "a//b", "/abs", "a/../b", "", ".hidden", "a b"])
async def test_keys_cannot_leave_the_store(key: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a safe blob key"):
        check_key(key)
    with pytest.raises(ValueError):
        await FolderStore(tmp_path).put(key, b"x", "text/plain")
    assert list(tmp_path.parent.glob("passwd")) == []


async def test_an_unreachable_bucket_is_a_clear_error(aws_env: None) -> None:
    port = free_port()  # nothing listens there
    store = S3Store("receipts", endpoint_url=f"http://127.0.0.1:{port}")
    with pytest.raises(BlobStoreError, match=r"s3://receipts: put_object failed"):
        await store.put("k", b"x", "text/plain")


def test_open_store_reads_the_setting(tmp_path: Path, aws_env: None) -> None:
    assert open_store("", default=tmp_path / "r").where == f"folder {tmp_path / 'r'}"
    assert open_store(f"file://{tmp_path}/x", default=tmp_path).where == f"folder {tmp_path}/x"
    assert open_store("s3://bucket/a/b", default=tmp_path).where == "s3://bucket/a/b"
    with pytest.raises(BlobStoreError, match="needs a bucket"):
        open_store("s3:///nobucket", default=tmp_path)
    with pytest.raises(BlobStoreError, match="a store is a folder path"):
        open_store("ftp://host/x", default=tmp_path)


def test_an_empty_endpoint_setting_means_none(monkeypatch: pytest.MonkeyPatch) -> None:
    from makegood.settings import Settings

    monkeypatch.setenv("MAKEGOOD_S3_ENDPOINT_URL", "")
    monkeypatch.setenv("MAKEGOOD_METRICS_BIND", " ")
    settings = Settings()
    assert settings.s3_endpoint_url is None and settings.metrics_bind is None
