"""The intake API over real HTTP: uvicorn on a free port, a worker, the dev server."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import random
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from standardwebhooks import Webhook
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from makegood.adapters.local.store import LocalStore
from makegood.api.app import ROUTERS, create_app
from makegood.api.auth import Allowed, zendesk_signature
from makegood.credentials import token_hash
from makegood.registry import build_worker
from makegood.serve import ApiServer
from makegood.settings import Settings
from tests.harness import CONVERTER, binary, local_adapters

TOKENS = {  # what the callers send
    "agent-token": "agent:sam",
    "manager-token": "manager:mia",
    "ops_lead-token": "ops_lead:olga",
    "auditor-token": "auditor:ann",
}
TOKEN_TABLE = {token_hash(token): who for token, who in TOKENS.items()}  # what is configured
TELEPHONY_SECRET = "whsec_" + base64.b64encode(b"test-telephony-secret-012345678").decode()
PAYMENTS_SECRET = "whsec_" + base64.b64encode(b"test-payments-secret-0123456789").decode()
SECRETS = {"/callbacks/telephony": TELEPHONY_SECRET, "/callbacks/payments": PAYMENTS_SECRET}
ZENDESK_SECRET = "test-zendesk-secret"


def api_routes(app: FastAPI) -> list[APIRoute]:
    """Every API operation of the app: its own routes and those of the routers it includes.

    FastAPI before 0.137 copies an included router's routes into `app.routes`, later ones
    leave them in the router: each operation is taken once, whichever the version.
    """
    out: list[APIRoute] = []
    seen: set[tuple[str, frozenset[str]]] = set()
    for route in [*app.routes, *(r for router in ROUTERS for r in router.routes)]:
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue  # the pages: their own guard (a session), tested in tests/test_pages.py
        key = (route.path, frozenset(route.methods))
        if key not in seen:
            seen.add(key)
            out.append(route)
    return out


def guards(dependant: Dependant) -> list[Allowed]:
    """The role-table guards a route depends on, however deep."""
    found = [d.call for d in dependant.dependencies if isinstance(d.call, Allowed)]
    return found + [g for d in dependant.dependencies for g in guards(d)]


def guarded_routes(app: FastAPI) -> list[tuple[str, str, str]]:
    """(method, path, action) for every route behind a role-table guard, in the app's order."""
    out = []
    for route in api_routes(app):
        found = guards(route.dependant)
        assert len(found) <= 1, f"{route.path} has more than one guard: {found}"
        out += [(m, route.path, g.action) for g in found for m in sorted(route.methods or ())]
    return out


_GIVEN: set[int] = set()


def free_port() -> int:
    """A port nobody listens on, below the kernel's ephemeral range (32768 and up): a port the
    kernel handed out for `bind(0)` may be handed out again at once, to any outgoing
    connection (a browser's, a gRPC client's), before the server meant for it binds it."""
    for _ in range(200):
        port = random.randrange(20000, 32000)
        if port in _GIVEN:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _GIVEN.add(port)
        return port
    raise RuntimeError("no free port between 20000 and 32000")


@dataclass
class Api:
    http: httpx.AsyncClient
    client: Client
    store: LocalStore
    settings: Settings
    app: FastAPI | None = None

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {role}-token"}

    async def post(
        self, path: str, body: Any, role: str | None = "agent", **headers: str
    ) -> httpx.Response:
        return await self.http.post(
            path, json=body, headers={**(self.auth(role) if role else {}), **headers}
        )

    async def get(self, path: str, role: str = "agent", **params: Any) -> httpx.Response:
        return await self.http.get(path, headers=self.auth(role), params=params)

    async def signed(
        self,
        path: str,
        body: dict[str, Any],
        *,
        msg_id: str | None = None,
        at: datetime | None = None,
        secret: str | None = None,
    ) -> httpx.Response:
        """A provider's delivery, signed the Standard Webhooks way (by default with the secret
        of the provider whose path it is)."""
        raw = json.dumps(body)
        secret = secret or SECRETS[path]
        msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
        at = at or datetime.now(UTC)
        signature = Webhook(secret).sign(msg_id, at, raw)
        return await self.http.post(
            path,
            content=raw,
            headers={
                "content-type": "application/json",
                "webhook-id": msg_id,
                "webhook-timestamp": str(int(at.timestamp())),
                "webhook-signature": signature,
            },
        )

    async def zendesk(
        self, body: dict[str, Any], *, at: datetime | None = None, secret: str = ZENDESK_SECRET
    ) -> httpx.Response:
        raw = json.dumps(body).encode()
        stamp = (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
        return await self.http.post(
            "/webhooks/zendesk",
            content=raw,
            headers={
                "content-type": "application/json",
                "x-zendesk-webhook-signature": zendesk_signature(secret, stamp, raw),
                "x-zendesk-webhook-signature-timestamp": stamp,
            },
        )

    async def status(self, case_id: str) -> dict[str, Any]:
        response = await self.get(f"/cases/{case_id}")
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    async def until(self, case_id: str, predicate: Any, what: str) -> dict[str, Any]:
        for _ in range(300):
            response = await self.get(f"/cases/{case_id}")
            if response.status_code == 200 and predicate(response.json()):
                return response.json()  # type: ignore[no-any-return]
            await asyncio.sleep(0.05)
        raise AssertionError(f"{case_id} never reached {what}")


@contextlib.asynccontextmanager
async def serving_app(app: FastAPI, port: int) -> AsyncIterator[None]:
    """The app on uvicorn at 127.0.0.1:`port`, started (uvicorn has no event to await) and
    stopped around the block."""
    server = ApiServer(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on"
        )
    )
    serving = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started or serving.done():
            break
        await asyncio.sleep(0.02)
    if not server.started:
        # uvicorn exits (SystemExit) when it cannot bind: fail this test alone, and say why.
        serving.cancel()
        try:
            await serving
        except BaseException as err:
            raise RuntimeError(f"the app could not be served on port {port}: {err!r}") from None
        raise RuntimeError(f"the app did not start serving on port {port}")
    try:
        yield
    finally:
        server.should_exit = True
        await serving


@contextlib.asynccontextmanager
async def running_api(tmp_path: Path, store: LocalStore, task_queue: str) -> AsyncIterator[Api]:
    port = free_port()
    async with await WorkflowEnvironment.start_local(
        data_converter=CONVERTER,
        dev_server_existing_path=binary("temporal"),
        dev_server_log_level="error",
    ) as env:
        settings = Settings(
            task_queue=task_queue,
            data_dir=tmp_path,
            api_port=port,
            api_tokens=TOKEN_TABLE,
            telephony_webhook_secret=TELEPHONY_SECRET,
            payments_webhook_secret=PAYMENTS_SECRET,
            zendesk_secret=ZENDESK_SECRET,
            max_body_bytes=16 * 1024,
        )
        app = create_app(settings, env.client)
        async with (
            serving_app(app, port),
            build_worker(env.client, task_queue, local_adapters(store).activities()),
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http,
        ):
            yield Api(http, env.client, store, settings, app)
