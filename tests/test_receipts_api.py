"""Receipt uploads through the API, against a dev server and a worker: the type told by the
file's first bytes, the upload's own size limit, the role table, the digest and where the file
is kept (a folder, or an S3 bucket served by moto over HTTP), and a claim that names it."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from makegood.activities.receipts import ReceiptActivities
from makegood.adapters.local.store import LocalStore
from makegood.adapters.receipt_index import ReceiptIndex
from makegood.api.app import create_app
from makegood.registry import build_worker
from makegood.settings import Settings
from tests.api_harness import TOKEN_TABLE, Api, free_port, running_api, serving_app
from tests.harness import CONVERTER, TICKETS, binary, local_adapters
from tests.test_blobs import aws_env, s3_endpoint  # noqa: F401  (fixtures)

PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + b"\0" * 64
CASE = "case-T-1001"


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def claim(claim_id: str, receipt: str | None, amount: str = "5.00") -> dict[str, Any]:
    return {
        "claim_id": claim_id,
        "description": "Taxi to the second car",
        "amount": {"amount": amount, "currency": "USD"},
        "receipt": f"{claim_id}.pdf",
        "receipt_sha256": receipt,
    }


async def upload(
    http: httpx.AsyncClient, data: bytes, role: str = "agent", case: str = CASE
) -> httpx.Response:
    return await http.post(
        f"/cases/{case}/receipts",
        content=data,
        headers={"authorization": f"Bearer {role}-token", "content-type": "application/pdf"},
    )


async def open_s1(api: Api) -> None:
    ticket = json.loads((TICKETS / "s1-missing-car.json").read_text())
    assert (await api.post("/cases", ticket)).status_code == 201
    for qid in ("locate-CAR-1-1", "locate-CAR-1-2"):
        await api.until(CASE, lambda s, q=qid: (s["question"] or {}).get("id") == q, qid)
        answered = await api.post(
            f"/cases/{CASE}/answers", {"question_id": qid, "answer": "not_found"}
        )
        assert answered.status_code == 200, answered.text


@pytest.fixture
async def api(tmp_path: Path, store: LocalStore, task_queue: str) -> AsyncIterator[Api]:
    async with running_api(tmp_path, store, task_queue) as running:
        yield running


async def test_an_uploaded_receipt_is_kept_by_its_digest_and_claimed_once(
    api: Api, tmp_path: Path
) -> None:
    await open_s1(api)
    first = await upload(api.http, PDF)
    assert first.status_code == 201, first.text
    assert first.json() == {
        "sha256": digest(PDF),
        "content_type": "application/pdf",
        "size": len(PDF),
        "created": True,
    }
    kept = tmp_path / "receipts" / "sha256" / digest(PDF)[:2] / digest(PDF)
    assert kept.read_bytes() == PDF
    again = await upload(api.http, PDF, role="manager")  # the same file: the same object
    assert again.status_code == 200 and again.json()["created"] is False

    taken = await api.post(f"/cases/{CASE}/claims", claim("taxi-1", digest(PDF)))
    assert taken.status_code == 200, taken.text
    dup = await api.post(f"/cases/{CASE}/claims", claim("taxi-2", digest(PDF)))
    assert dup.status_code == 409, dup.text
    assert dup.json()["detail"].startswith(f"receipt already claimed as taxi-1 in case {CASE} on ")

    status = await api.status(CASE)
    assert [(c["claim_id"], c["receipt_sha256"]) for c in status["claims"]] == [
        ("taxi-1", digest(PDF))
    ]


async def test_a_claim_naming_a_receipt_never_uploaded_is_refused_by_the_api(api: Api) -> None:
    await open_s1(api)
    missing = await api.post(f"/cases/{CASE}/claims", claim("taxi-1", digest(b"%PDF-nope")))
    assert missing.status_code == 422, missing.text
    [problem] = missing.json()["problems"]
    assert problem["field"] == "receipt_sha256"
    assert problem["reason"].startswith("no receipt with this digest was uploaded")
    malformed = await api.post(f"/cases/{CASE}/claims", claim("taxi-1", "abc"))
    assert malformed.status_code == 422
    assert "must be a SHA-256 digest" in malformed.json()["problems"][0]["reason"]
    assert (await api.status(CASE))["claims"] == []


async def test_what_a_receipt_may_be_and_who_may_upload_it(api: Api, tmp_path: Path) -> None:
    await open_s1(api)
    png = await upload(api.http, PNG)
    assert png.status_code == 201 and png.json()["content_type"] == "image/png"

    gif = await upload(api.http, b"GIF89a" + b"\0" * 32)
    assert gif.status_code == 415
    assert "a receipt is a PDF, PNG, JPEG, WebP or HEIC file" in gif.json()["detail"]
    html = await upload(api.http, b"<html><body>%PDF-1.7</body></html>")  # named .pdf or not
    assert html.status_code == 415
    empty = await upload(api.http, b"")
    assert empty.status_code == 422

    auditor = await upload(api.http, PDF, role="auditor")
    assert auditor.status_code == 403
    assert auditor.json()["detail"].startswith("expense claims come from")
    nobody = await api.http.post(f"/cases/{CASE}/receipts", content=PDF)
    assert nobody.status_code == 401
    unknown = await upload(api.http, PDF, case="case-nope")
    assert unknown.status_code == 404

    # The upload's own limit (5 MiB), far above the 16 KiB every other body may have here.
    big = PDF + b"\0" * (1024 * 1024)
    assert (await upload(api.http, big)).status_code == 201
    too_big = PDF + b"\0" * (api.settings.max_receipt_bytes + 1 - len(PDF))

    async def streamed() -> AsyncIterator[bytes]:  # chunked: no length declared, counted
        for at in range(0, len(too_big), 64 * 1024):
            yield too_big[at : at + 64 * 1024]

    refused = await api.http.post(
        f"/cases/{CASE}/receipts", content=streamed(), headers=api.auth("agent")
    )
    assert refused.status_code == 413
    assert "MAKEGOOD_MAX_RECEIPT_BYTES" in refused.json()["detail"]
    note = await api.post(f"/cases/{CASE}/notes", {"text": "x" * (20 * 1024)})
    assert note.status_code == 413  # the larger limit is the upload route's alone
    stored = sorted(p.name for p in (tmp_path / "receipts").rglob("*") if p.is_file())
    assert stored == sorted([digest(PNG), digest(big)])


async def test_receipts_in_an_s3_bucket_end_to_end(
    tmp_path: Path,
    store: LocalStore,
    task_queue: str,
    s3_endpoint: str,  # noqa: F811
    aws_env: None,  # noqa: F811
) -> None:
    bucket = "receipts-e2e"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=bucket)
    port = free_port()
    settings = Settings(
        task_queue=task_queue,
        data_dir=tmp_path,
        api_port=port,
        api_tokens=TOKEN_TABLE,
        receipt_store=f"s3://{bucket}/makegood/receipts",
        s3_endpoint_url=s3_endpoint,
    )
    # The worker's receipt store is the bucket too: the case checks the file is there.
    adapters = dataclasses.replace(
        local_adapters(store),
        receipts=ReceiptActivities(ReceiptIndex(settings.receipt_index_path), settings.receipts()),
    )
    async with (
        await WorkflowEnvironment.start_local(
            data_converter=CONVERTER,
            dev_server_existing_path=binary("temporal"),
            dev_server_log_level="error",
        ) as env,
        serving_app(create_app(settings, env.client), port),
        build_worker(env.client, task_queue, adapters.activities()),
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http,
    ):
        api = Api(http, env.client, store, settings)
        await open_s1(api)
        uploaded = await upload(http, PDF)
        assert uploaded.status_code == 201, uploaded.text
        key = f"makegood/receipts/sha256/{digest(PDF)[:2]}/{digest(PDF)}"
        s3 = boto3.client("s3", endpoint_url=s3_endpoint)
        obj = s3.get_object(Bucket=bucket, Key=key)
        assert obj["Body"].read() == PDF and obj["ContentType"] == "application/pdf"
        assert not (tmp_path / "receipts").exists()  # nothing in the default folder

        assert (await api.post(f"/cases/{CASE}/claims", claim("taxi-1", digest(PDF)))).is_success
        dup = await api.post(f"/cases/{CASE}/claims", claim("taxi-2", digest(PDF)))
        assert dup.status_code == 409 and "already claimed as taxi-1" in dup.json()["detail"]
