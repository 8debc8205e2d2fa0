"""Receipt files: uploaded to a case, kept content-addressed in the receipt store.

`POST /cases/{id}/receipts` takes the file itself as the body (any Content-Type; the type is
told by the file's first bytes: PDF, PNG, JPEG, WebP or HEIC, anything else is 415). It is
stored under `sha256/<aa>/<hex>` in the receipt store (MAKEGOOD_RECEIPT_STORE: a folder by
default, or an S3-compatible bucket) and the answer is its SHA-256, which a claim names as
`receipt_sha256`. The same file uploaded twice is one object, and the same digest: that is how
a receipt claimed again, under any claim id or in another case, is recognised.

The body limit for this route is MAKEGOOD_MAX_RECEIPT_BYTES (5 MiB by default), counted while
the body streams in like every other (`makegood.api.limits`); a larger file is 413 before it is
read to the end. Who may upload is who may claim (the role table's `submit_claim`).
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

import structlog
from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from makegood.adapters.blobs import BlobStore, BlobStoreError
from makegood.api.deps import AppSettings, CaseId, MayClaim, Temporal
from makegood.api.limits import Larger
from makegood.api.responses import CASE, TEMPORAL, TOKEN, Responses, problem, responses
from makegood.cases import CaseNotFound, case_handle
from makegood.domain.receipts import ACCEPTED, Sha256, blob_key, sniff
from makegood.settings import Settings

log = structlog.get_logger("makegood.api")
router = APIRouter()

UPLOAD_TIMEOUT_S: Final = 120.0
"""How long a receipt may take to arrive (5 MiB: at least ~44 KB/s)."""


def upload_limit(settings: Settings) -> Larger:
    """The body limit of the upload route, for `BodyLimit`."""
    return Larger(
        "POST",
        re.compile(r"/cases/[^/]+/receipts"),
        settings.max_receipt_bytes,
        "MAKEGOOD_MAX_RECEIPT_BYTES",
        UPLOAD_TIMEOUT_S,
    )


def receipt_store(request: Request) -> BlobStore:
    """The app's receipt store, opened on first use (an S3 client is made once)."""
    store: BlobStore | None = getattr(request.app.state, "receipt_store", None)
    if store is None:
        settings: Settings = request.app.state.settings
        store = request.app.state.receipt_store = settings.receipts()
    return store


class Receipt(BaseModel):
    sha256: Sha256
    content_type: str = Field(description="as told by the file's first bytes")
    size: int
    created: bool = Field(description="false: this very file was uploaded before")


STORE_DOWN: Final[Responses] = {
    503: problem("the receipt store is unreachable or refused; nothing was stored"),
}


@router.post(
    "/cases/{case_id}/receipts",
    tags=["actions"],
    status_code=201,
    responses=responses(
        {200: {"model": Receipt, "description": "this file was uploaded before: its digest"}},
        TOKEN,
        CASE,
        {
            413: problem("the file is larger than MAKEGOOD_MAX_RECEIPT_BYTES"),
            415: problem(f"not a receipt file: {ACCEPTED}, told by its first bytes"),
            422: problem("the body is empty"),
        },
        TEMPORAL,
        STORE_DOWN,
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": f"the receipt file itself ({ACCEPTED}), under any Content-Type: "
            "the type is told by the file's first bytes",
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
)
async def upload_receipt(
    case_id: CaseId,
    request: Request,
    response: Response,
    who: MayClaim,
    client: Temporal,
    settings: AppSettings,
) -> Receipt:
    data = await request.body()  # complete and within the limit: BodyLimit read it
    found = await keep_receipt(request, client, case_id, data, settings.max_receipt_bytes)
    response.status_code = status.HTTP_201_CREATED if found.created else status.HTTP_200_OK
    log.info(
        "receipt_uploaded", case_id=case_id, sha256=found.sha256, size=found.size, by=str(who.actor)
    )
    return found


async def keep_receipt(
    request: Request, client: Client, case_id: str, data: bytes, max_bytes: int
) -> Receipt:
    """Check a receipt file and keep it in the receipt store (once: it is content-addressed),
    for an existing case; HTTPException with the reason if it is not a receipt or the store
    fails. The API's upload route and the pages' forms both keep receipts here."""
    if not data:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "the body is empty: no file")
    if len(data) > max_bytes:  # BodyLimit has said so already; belt and braces
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, "the file is too large")
    kind = sniff(data)
    if kind is None:
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            f"not a receipt file: a receipt is a {ACCEPTED} file (told by its first bytes, "
            "not its name or Content-Type); nothing was stored",
        )
    try:
        await case_handle(client, case_id).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise CaseNotFound(case_id) from None
        raise
    digest = hashlib.sha256(data).hexdigest()
    store = receipt_store(request)
    try:
        existed = await store.exists(blob_key(digest))
        if not existed:
            await store.put(blob_key(digest), data, kind)
    except BlobStoreError as err:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, f"the receipt store failed: {err}"
        ) from None
    return Receipt(sha256=digest, content_type=kind, size=len(data), created=not existed)


async def check_uploaded(request: Request, digest: str) -> None:
    """Before a claim is sent: its receipt must be in the store (422 naming the field if not)."""
    try:
        found = await receipt_store(request).exists(blob_key(digest))
    except BlobStoreError as err:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, f"the receipt store failed: {err}"
        ) from None
    if not found:
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("body", "receipt_sha256"),
                    "msg": "no receipt with this digest was uploaded: upload the file first "
                    "(POST /cases/{case_id}/receipts)",
                    "input": digest,
                }
            ]
        )
