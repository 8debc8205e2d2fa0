"""A stand-in for the outside providers, over real HTTP, that fails the way real ones do.

Backed by the local adapters (so idempotency keys behave as a provider's would), it checks
each request's signature and can be told to fail the next calls to a path: with a 500, with
an answer slower than the client's timeout, or by committing the effect and then losing the
answer (a 500 after the payment is booked).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from makegood.adapters.local.providers import (
    LocalNotifier,
    LocalPayments,
    LocalProductControl,
    LocalTelephony,
)
from makegood.adapters.local.store import LocalStore
from makegood.adapters.real.http import sign
from makegood.domain import provider as p
from makegood.serve import ApiServer
from tests.api_harness import free_port

Fault = Literal["pass", "500", "slow", "commit_then_500", "400"]

PRODUCT = {
    "locate": (p.LocateRequest, "locate", True),
    "ownership": (p.OwnershipRequest, "verify_ownership", False),
    "rebook": (p.RebookRequest, "rebook", True),
    "release": (p.ReleaseRequest, "release", True),
    "stock": (p.StockRequest, "stock", False),
    "return": (p.ReturnRequest, "create_return", True),
    "quote": (p.QuoteRequest, "quote_substitute", False),
    "substitute": (p.SubstituteRequest, "place_substitute", True),
    "ship": (p.ShipRequest, "ship", True),
    "perk": (p.PerkRequest, "grant_perk", True),
    "remake": (p.RemakeRequest, "remake", True),
    "repair": (p.RepairRequest, "book_repair", True),
    "replace": (p.ReplaceRequest, "replace", True),
}


@dataclass
class Providers:
    store: LocalStore
    secret: str
    faults: dict[str, list[Fault]] = field(default_factory=lambda: defaultdict(list))
    calls: Counter[str] = field(default_factory=Counter)
    slow_s: float = 2.0
    url: str = ""

    def fail(self, path: str, *faults: Fault) -> None:
        self.faults[path].extend(faults)

    def app(self) -> FastAPI:
        app = FastAPI()
        notifier, payments = LocalNotifier(self.store), LocalPayments(self.store)
        product, telephony = LocalProductControl(self.store), LocalTelephony(self.store)

        async def handle(
            request: Request, path: str, effect: Callable[[str, bytes], Awaitable[BaseModel | Any]]
        ) -> Response:
            self.calls[path] += 1
            body = await request.body()
            key = request.headers.get("idempotency-key", "")
            stamp = request.headers.get("x-makegood-timestamp", "")
            expected = sign(self.secret, stamp, key, body)
            if not hmac.compare_digest(expected, request.headers.get("x-makegood-signature", "")):
                return JSONResponse({"detail": "bad signature"}, 401)
            fault = self.faults[path].pop(0) if self.faults[path] else None
            if fault == "500":
                return JSONResponse({"detail": "provider unavailable"}, 500)
            if fault == "400":
                return JSONResponse({"detail": "card declined"}, 402)
            if fault == "slow":
                await asyncio.sleep(self.slow_s)
            try:
                result = await effect(key, body)
            except Exception as err:  # the local adapters' refusals, as a provider says them
                return JSONResponse({"detail": str(err)}, 422)
            if fault == "commit_then_500":
                return JSONResponse({"detail": "answer lost"}, 500)
            if result is None:
                return JSONResponse({"detail": "not found"}, 404)
            if isinstance(result, list):
                return JSONResponse([r.model_dump(mode="json") for r in result])
            return Response(result.model_dump_json(), media_type="application/json")

        @app.post("/messages")
        async def messages(request: Request) -> Response:
            return await handle(
                request,
                "/messages",
                lambda k, b: notifier.send(k, p.MessageRequest.model_validate_json(b)),
            )

        @app.post("/payments")
        async def pay(request: Request) -> Response:
            return await handle(
                request,
                "/payments",
                lambda k, b: payments.pay(k, p.PaymentRequest.model_validate_json(b)),
            )

        @app.get("/payments/{key:path}")
        async def lookup(request: Request, key: str) -> Response:
            async def find(_: str, __: bytes) -> p.LedgerEntry | None:
                found = [e for e in await payments.ledger() if e.idempotency_key == key]
                return (
                    p.PaymentReceipt(
                        payment_id=found[0].payment_id,
                        idempotency_key=key,
                        kind=found[0].kind,
                        amount=found[0].amount,
                        created_at=found[0].created_at,
                    )
                    if found
                    else None
                )

            return await handle(request, "/payments/lookup", find)

        @app.get("/payments")
        async def ledger(request: Request, case_ids: str | None = None) -> Response:
            ids = case_ids.split(",") if case_ids else None
            return await handle(request, "/payments/ledger", lambda k, b: payments.ledger(ids))

        @app.post("/calls")
        async def calls(request: Request) -> Response:
            return await handle(
                request,
                "/calls",
                lambda k, b: telephony.schedule_call(k, p.CallRequest.model_validate_json(b)),
            )

        @app.post("/product/{operation}")
        async def product_call(request: Request, operation: str) -> Response:
            model, method, keyed = PRODUCT[operation]

            async def run(key: str, body: bytes) -> BaseModel:
                req = model.model_validate_json(body)
                fn = getattr(product, method)
                return await (fn(key, req) if keyed else fn(req))

            return await handle(request, f"/product/{operation}", run)

        return app


@contextlib.asynccontextmanager
async def serving(store: LocalStore, secret: str) -> AsyncIterator[Providers]:
    providers = Providers(store, secret)
    port = free_port()
    server = ApiServer(
        uvicorn.Config(
            providers.app(), host="127.0.0.1", port=port, log_config=None, access_log=False
        )
    )
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.02)
    providers.url = f"http://127.0.0.1:{port}"
    try:
        yield providers
    finally:
        server.should_exit = True
        await task
