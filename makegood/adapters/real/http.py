"""Providers over HTTP (httpx): SMS and push, payments, product control, telephony.

Every request carries the idempotency key (`Idempotency-Key`), a timestamp and an HMAC
signature over both and the body, and a timeout. Answers are classified: 5xx, 408, 425, 429,
timeouts and broken connections are retried by the activity; any other 4xx is the provider's
final word and escalates with its reason.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter

from makegood.adapters.base import PermanentProviderError, TransientProviderError
from makegood.domain.provider import (
    BookingResult,
    CallRequest,
    LedgerEntry,
    LocateRequest,
    LocateResult,
    MessageReceipt,
    MessageRequest,
    Ownership,
    OwnershipRequest,
    PaymentReceipt,
    PaymentRequest,
    PerkRequest,
    ProductReceipt,
    Quote,
    QuoteRequest,
    RebookRequest,
    ReleaseRequest,
    RemakeRequest,
    RepairRequest,
    Replacement,
    ReplaceRequest,
    ReturnLabel,
    ReturnRequest,
    ScheduledCall,
    ShipRequest,
    StockRequest,
    StockResult,
    SubstituteRequest,
)

R = TypeVar("R")


_ADAPTERS: dict[type[Any], TypeAdapter[Any]] = {}


def _adapter(model: type[R]) -> TypeAdapter[R]:
    """One TypeAdapter per result type: building one per request would cost a schema each."""
    if model not in _ADAPTERS:
        _ADAPTERS[model] = TypeAdapter(model)
    return _ADAPTERS[model]


RETRYABLE = {408, 425, 429}


def sign(secret: str, timestamp: str, key: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.{key}.".encode() + body, hashlib.sha256)
    return f"v1={mac.hexdigest()}"


def _reason(response: httpx.Response) -> str:
    try:
        data = response.json()
        return str(data.get("detail") or data.get("error") or data)
    except ValueError:
        return response.text[:200] or response.reason_phrase


class HttpProvider:
    def __init__(
        self,
        base_url: str,
        secret: str,
        *,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.secret = secret
        self.http = httpx.AsyncClient(base_url=base_url, timeout=timeout_s, transport=transport)

    async def close(self) -> None:
        await self.http.aclose()

    async def request(
        self,
        method: str,
        path: str,
        result: type[R] | TypeAdapter[R],
        *,
        key: str = "",
        body: BaseModel | None = None,
        params: dict[str, str] | None = None,
        missing_ok: bool = False,
    ) -> R | None:
        content = body.model_dump_json().encode() if body is not None else b""
        stamp = str(int(time.time()))
        headers = {
            "X-Makegood-Timestamp": stamp,
            "X-Makegood-Signature": sign(self.secret, stamp, key, content),
        }
        if key:
            headers["Idempotency-Key"] = key
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            response = await self.http.request(
                method, path, content=content or None, headers=headers, params=params
            )
        except httpx.TimeoutException as err:
            raise TransientProviderError(
                f"{method} {path} timed out ({type(err).__name__})", code="timeout"
            ) from err
        except httpx.TransportError as err:
            raise TransientProviderError(
                f"{method} {path}: {type(err).__name__}: {err}", code="connection"
            ) from err
        code = response.status_code
        if code == 404 and missing_ok:
            return None
        if code >= 500 or code in RETRYABLE:
            raise TransientProviderError(
                f"{method} {path}: {code} {_reason(response)}", code=str(code)
            )
        if code >= 400:
            raise PermanentProviderError(
                f"{method} {path}: {code} {_reason(response)}", code=str(code)
            )
        adapter = result if isinstance(result, TypeAdapter) else _adapter(result)
        return adapter.validate_json(response.content)

    async def post(self, path: str, key: str, body: BaseModel, result: type[R]) -> R:
        found = await self.request("POST", path, result, key=key, body=body)
        assert found is not None
        return found


class HttpNotifier:
    """SMS and push over HTTP; email goes through SMTP."""

    def __init__(self, provider: HttpProvider) -> None:
        self.provider = provider

    async def send(self, key: str, req: MessageRequest) -> MessageReceipt:
        return await self.provider.post("/messages", key, req, MessageReceipt)


class HttpPayments:
    def __init__(self, provider: HttpProvider) -> None:
        self.provider = provider

    async def pay(self, key: str, req: PaymentRequest) -> PaymentReceipt:
        # Look the earlier attempt up first: a retry after a lost answer finds its payment
        # even where the provider has already forgotten the idempotency key.
        earlier = await self.provider.request(
            "GET", f"/payments/{key}", PaymentReceipt, missing_ok=True
        )
        if earlier is not None:
            return earlier
        return await self.provider.post("/payments", key, req, PaymentReceipt)

    async def ledger(self, case_ids: Sequence[str] | None = None) -> list[LedgerEntry]:
        params = {"case_ids": ",".join(case_ids)} if case_ids is not None else None
        found = await self.provider.request(
            "GET", "/payments", TypeAdapter(list[LedgerEntry]), params=params
        )
        return found or []


class HttpProductControl:
    def __init__(self, provider: HttpProvider) -> None:
        self.p = provider

    async def locate(self, key: str, req: LocateRequest) -> LocateResult:
        return await self.p.post("/product/locate", key, req, LocateResult)

    async def rebook(self, key: str, req: RebookRequest) -> BookingResult:
        return await self.p.post("/product/rebook", key, req, BookingResult)

    async def release(self, key: str, req: ReleaseRequest) -> ProductReceipt:
        return await self.p.post("/product/release", key, req, ProductReceipt)

    async def stock(self, req: StockRequest) -> StockResult:
        return await self.p.post("/product/stock", "", req, StockResult)

    async def create_return(self, key: str, req: ReturnRequest) -> ReturnLabel:
        return await self.p.post("/product/return", key, req, ReturnLabel)

    async def quote_substitute(self, req: QuoteRequest) -> Quote:
        return await self.p.post("/product/quote", "", req, Quote)

    async def place_substitute(self, key: str, req: SubstituteRequest) -> ProductReceipt:
        return await self.p.post("/product/substitute", key, req, ProductReceipt)

    async def ship(self, key: str, req: ShipRequest) -> ProductReceipt:
        return await self.p.post("/product/ship", key, req, ProductReceipt)

    async def grant_perk(self, key: str, req: PerkRequest) -> ProductReceipt:
        return await self.p.post("/product/perk", key, req, ProductReceipt)

    async def verify_ownership(self, req: OwnershipRequest) -> Ownership:
        return await self.p.post("/product/ownership", "", req, Ownership)

    async def remake(self, key: str, req: RemakeRequest) -> ProductReceipt:
        return await self.p.post("/product/remake", key, req, ProductReceipt)

    async def book_repair(self, key: str, req: RepairRequest) -> ProductReceipt:
        return await self.p.post("/product/repair", key, req, ProductReceipt)

    async def replace(self, key: str, req: ReplaceRequest) -> Replacement:
        return await self.p.post("/product/replace", key, req, Replacement)


class HttpTelephony:
    def __init__(self, provider: HttpProvider) -> None:
        self.provider = provider

    async def schedule_call(self, key: str, req: CallRequest) -> ScheduledCall:
        return await self.provider.post("/calls", key, req, ScheduledCall)
