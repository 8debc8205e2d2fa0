"""The webhook replay guard is durable and shared, and records a delivery only once it was
processed: against real API instances (uvicorn) on one data folder, a worker and the dev
server. Each instance is a separate app with its own guard object; what they share is the
SQLite file, as two API processes on one data folder would, or the PostgreSQL database
(MAKEGOOD_DATABASE_URL), as API replicas on several hosts would: each test runs on both."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.protobuf.duration_pb2 import Duration
from standardwebhooks import Webhook
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from makegood.api.app import create_app
from makegood.api.auth import zendesk_signature
from makegood.api.replay_store import (
    FILE_NAME,
    DeliveryGuard,
    GuardUnavailable,
    Replayed,
    ReplayGuard,
    State,
    replay_guard,
)
from makegood.api.replay_store_pg import PgReplayGuard
from makegood.settings import Settings
from tests.api_harness import (
    PAYMENTS_SECRET,
    TELEPHONY_SECRET,
    TOKEN_TABLE,
    ZENDESK_SECRET,
    Api,
    free_port,
    serving_app,
)
from tests.harness import CONVERTER, dev_server_and_worker, local_store
from tests.postgres import Cluster, pg_cluster, pg_url  # noqa: F401
from tests.test_api import raw, zendesk_body

TASK_QUEUE = "replay-tests"


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[WorkflowEnvironment]:
    """One dev server and worker for the module; each test has its own data folder."""
    store = await local_store(tmp_path_factory.mktemp("adapters") / "adapters.sqlite")
    async with dev_server_and_worker(store, TASK_QUEUE) as env:
        yield env
    await store.close()


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest) -> str:
    """MAKEGOOD_DATABASE_URL: unset (the data folder's file), or a fresh PostgreSQL database."""
    return "" if request.param == "sqlite" else str(request.getfixturevalue("pg_url"))


def settings(data: Path, database: str = "") -> Settings:
    return Settings(
        task_queue=TASK_QUEUE,
        data_dir=data,
        database_url=database,
        api_tokens=TOKEN_TABLE,
        telephony_webhook_secret=TELEPHONY_SECRET,
        payments_webhook_secret=PAYMENTS_SECRET,
        zendesk_secret=ZENDESK_SECRET,
    )


@contextlib.asynccontextmanager
async def instance(data: Path, client: Client, database: str = "") -> AsyncIterator[Api]:
    """One API process's worth: a new app on the data folder, served by uvicorn."""
    port = free_port()
    config = settings(data, database)
    async with (
        serving_app(create_app(config, client), port),
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http,
    ):
        yield Api(http, client, None, config)  # type: ignore[arg-type]  # no store needed


def ticket_no() -> int:
    return uuid.uuid4().int % 10**9


def settled(case_id: str) -> dict[str, Any]:
    return {"type": "payment.settled", "idempotency_key": f"{case_id}:coupon"}


async def rows(data: Path, database: str) -> list[tuple[str, State, float]]:
    return await replay_guard(data, 300, database).rows()


async def test_a_replayed_delivery_is_refused_after_an_api_restart(
    server: WorkflowEnvironment, tmp_path: Path, database: str
) -> None:
    number, at = ticket_no(), datetime.now(UTC)
    async with instance(tmp_path, server.client, database) as before:
        opened = await before.zendesk(zendesk_body(number), at=at)
        assert opened.status_code == 201, opened.text
        paid = await before.signed(
            "/callbacks/payments", settled(f"case-ZD-{number}"), msg_id="pay_1", at=at
        )
        assert paid.status_code == 202, paid.text

    # The same bytes, byte for byte, to a new instance.
    async with instance(tmp_path, server.client, database) as after:
        again = await after.zendesk(zendesk_body(number), at=at)
        assert again.status_code == 409, again.text
        assert again.json()["detail"].endswith("was already received")
        replayed = await after.signed(
            "/callbacks/payments", settled(f"case-ZD-{number}"), msg_id="pay_1", at=at
        )
        assert replayed.status_code == 409, replayed.text
        # Ids are per provider: the telephony provider's pay_1 is another delivery.
        other = await after.signed(
            "/callbacks/telephony",
            {"case_id": f"case-ZD-{number}", "call_id": "c1", "status": "completed"},
            msg_id="pay_1",
        )
        assert other.status_code == 409 and "no call-back" in other.json()["detail"], other.text
    assert [state for _, state, _ in await rows(tmp_path, database)] == ["done", "done"]


async def test_a_delivery_whose_processing_failed_can_be_retried_with_the_same_id(
    server: WorkflowEnvironment, tmp_path: Path, database: str
) -> None:
    case_id = f"case-T-{ticket_no()}"
    async with instance(tmp_path, server.client, database) as api:
        early = await api.signed("/callbacks/payments", settled(case_id), msg_id="evt_early")
        assert early.status_code == 404, early.text
        assert await rows(tmp_path, database) == []  # released: nothing recorded

        opened = await api.post("/cases", {**raw("s5-wrong-drink.json"), "id": case_id[5:]})
        assert opened.status_code == 201, opened.text
        # The provider retries: same id, signed anew.
        retried = await api.signed("/callbacks/payments", settled(case_id), msg_id="evt_early")
        assert retried.status_code == 202, retried.text
        replayed = await api.signed("/callbacks/payments", settled(case_id), msg_id="evt_early")
        assert replayed.status_code == 409, replayed.text


async def test_a_delivery_temporal_refused_succeeds_when_retried(
    server: WorkflowEnvironment, tmp_path: Path, database: str
) -> None:
    """The API's namespace does not exist yet: Temporal refuses to start the case. Once it is
    registered, the very same signed delivery opens the case, and only then is it recorded."""
    namespace = f"late-{uuid.uuid4().hex[:8]}"
    target = server.client.service_client.config.target_host
    late = await Client.connect(target, namespace=namespace, data_converter=CONVERTER)
    number, at = ticket_no(), datetime.now(UTC)
    async with instance(tmp_path, late, database) as api:
        refused = await api.zendesk(zendesk_body(number), at=at)
        assert refused.status_code >= 500, refused.text
        assert await rows(tmp_path, database) == []

        await server.client.workflow_service.register_namespace(
            RegisterNamespaceRequest(
                namespace=namespace,
                workflow_execution_retention_period=Duration(seconds=86400),
            )
        )
        for _ in range(100):  # the server takes a moment to know the new namespace
            retried = await api.zendesk(zendesk_body(number), at=at)
            if retried.status_code < 500:
                break
            await asyncio.sleep(0.1)
        assert retried.status_code == 201, retried.text
        assert (await api.zendesk(zendesk_body(number), at=at)).status_code == 409


async def test_two_api_instances_on_one_folder_share_the_guard(
    server: WorkflowEnvironment, tmp_path: Path, database: str
) -> None:
    number, at = ticket_no(), datetime.now(UTC)
    async with (
        instance(tmp_path, server.client, database) as one,
        instance(tmp_path, server.client, database) as two,
    ):
        both = await asyncio.gather(
            one.zendesk(zendesk_body(number), at=at), two.zendesk(zendesk_body(number), at=at)
        )
        assert sorted(r.status_code for r in both) == [201, 409], [r.text for r in both]

        first = await one.signed("/callbacks/payments", settled(f"case-ZD-{number}"), msg_id="p")
        assert first.status_code == 202, first.text
        elsewhere = await two.signed(
            "/callbacks/payments", settled(f"case-ZD-{number}"), msg_id="p"
        )
        assert elsewhere.status_code == 409, elsewhere.text


BAD_JSON = [
    (b'{"ticket": ', "JSON decode error at character 11"),
    (b"[" * 5000 + b"]" * 5000, "nested too deeply"),
]


@pytest.mark.parametrize(("body", "reason"), BAD_JSON)
async def test_signed_but_invalid_json_gets_422_with_problems_and_burns_no_id(
    server: WorkflowEnvironment, tmp_path: Path, database: str, body: bytes, reason: str
) -> None:
    number = ticket_no()
    async with instance(tmp_path, server.client, database) as api:
        for path in ("/webhooks/zendesk", "/callbacks/telephony", "/callbacks/payments"):
            response = await signed_raw(api, path, body, msg_id="m1")
            assert response.status_code == 422, (path, response.status_code, response.text)
            [problem] = response.json()["problems"]
            assert problem["field"] == "(body)" and reason in problem["reason"], problem
            shapeless = await signed_raw(api, path, b'["not", "an", "object"]', msg_id="m1")
            assert shapeless.status_code == 422, (path, shapeless.text)
            assert shapeless.json()["problems"], shapeless.text
        # Zendesk signs bytes, not text: bytes that are no UTF-8 are a problem, not a crash.
        latin = await signed_raw(api, "/webhooks/zendesk", b'{"ticket": "caf\xe9"}')
        assert latin.status_code == 422, latin.text
        assert "not UTF-8 text" in latin.json()["problems"][0]["reason"]
        assert await rows(tmp_path, database) == []
        # The ids were not burned: a valid delivery with the same id goes through.
        opened = await api.zendesk(zendesk_body(number))
        assert opened.status_code == 201, opened.text
        fine = await api.signed("/callbacks/payments", settled(f"case-ZD-{number}"), msg_id="m1")
        assert fine.status_code == 202, fine.text


async def signed_raw(api: Api, path: str, body: bytes, msg_id: str = "m") -> httpx.Response:
    """A correctly signed delivery of arbitrary bytes."""
    at = datetime.now(UTC)
    if path == "/webhooks/zendesk":
        stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
        headers = {
            "x-zendesk-webhook-signature": zendesk_signature(ZENDESK_SECRET, stamp, body),
            "x-zendesk-webhook-signature-timestamp": stamp,
        }
    else:
        secret = TELEPHONY_SECRET if "telephony" in path else PAYMENTS_SECRET
        signature = Webhook(secret).sign(msg_id, at, body.decode())
        headers = {
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": signature,
        }
    return await api.http.post(
        path, content=body, headers={"content-type": "application/json", **headers}
    )


def guard_on(
    tmp_path: Path, database: str, ttl_s: float, lease_s: float, clock: Callable[[], float]
) -> DeliveryGuard:
    if database:
        return PgReplayGuard(database, ttl_s=ttl_s, lease_s=lease_s, clock=clock)
    return ReplayGuard(tmp_path / FILE_NAME, ttl_s=ttl_s, lease_s=lease_s, clock=clock)


async def test_entries_live_for_the_tolerance_window_and_expired_ones_are_pruned(
    tmp_path: Path, database: str
) -> None:
    now = [1_000_000.0]
    guard = guard_on(tmp_path, database, ttl_s=300, lease_s=60, clock=lambda: now[0])
    async with guard.holding(await guard.claim("a", signed_at=now[0])):
        pass
    # A delivery signed ahead of our clock stays as long as its signature could pass.
    async with guard.holding(await guard.claim("b", signed_at=now[0] + 100)):
        pass
    crashed = await guard.claim("c", signed_at=now[0])  # its process died: never released
    assert await guard.rows() == [
        ("a", "done", 1_000_300.0),
        ("b", "done", 1_000_400.0),
        ("c", "pending", 1_000_060.0),
    ]
    with pytest.raises(Replayed) as pending:
        await guard.claim("c", signed_at=now[0])
    assert pending.value.state == "pending"
    assert crashed.key == "c"

    now[0] += 299
    with pytest.raises(Replayed) as done:
        await guard.claim("a", signed_at=now[0])
    assert done.value.state == "done"
    now[0] += 2  # a's window has passed; c's claim lapsed long ago
    await guard.claim("d", signed_at=now[0])
    assert [(k, s) for k, s, _ in await guard.rows()] == [("b", "done"), ("d", "pending")]
    await guard.claim("a", signed_at=now[0])  # no longer a replay the signature would let in


async def test_the_guard_needs_no_file_until_the_first_delivery(tmp_path: Path) -> None:
    create_app(settings(tmp_path / "data"))
    assert not (tmp_path / "data").exists()
    # Nor a database: building the app connects to none (this port has no server).
    create_app(settings(tmp_path / "data", f"postgresql://u@127.0.0.1:{free_port()}/db"))


async def test_an_unreachable_database_is_a_guard_failure_not_a_crash(tmp_path: Path) -> None:
    """What the webhook routes turn into a 503 (and `holding` into a warning)."""
    guard = replay_guard(tmp_path, 300, f"postgresql://u:p@127.0.0.1:{free_port()}/db")
    with pytest.raises(GuardUnavailable, match=r"u:\*\*\*@127.0.0.1"):
        await guard.claim("a", 0.0)


def test_webhook_bodies_are_declared_without_dangling_references() -> None:
    doc = create_app(settings(Path("unused"))).openapi()
    schemas = doc["components"]["schemas"]

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            own = [node["$ref"]] if "$ref" in node else []
            return own + [r for v in node.values() for r in refs(v)]
        return [r for v in node for r in refs(v)] if isinstance(node, list) else []

    for ref in refs(doc):
        assert ref.removeprefix("#/components/schemas/") in schemas, ref
    assert "$defs" not in json.dumps(doc)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_two_processes_starting_on_a_new_folder_at_once_never_lock_each_other_out(
    tmp_path: Path,
    pg_cluster: Cluster,  # noqa: F811
    backend: str,
) -> None:
    """Both guards prepare the store (WAL, the table) on their first delivery: a statement left
    open by one used to deadlock the other into "database is locked" (a 503); in PostgreSQL,
    both creating the table at once can fail one of them."""
    for n in range(40 if backend == "sqlite" else 10):
        folder = tmp_path / f"f{n}"
        database = "" if backend == "sqlite" else pg_cluster.url(await pg_cluster.create_database())
        first, second = replay_guard(folder, 300, database), replay_guard(folder, 300, database)
        results = await asyncio.gather(
            first.claim("delivery-1", 0.0), second.claim("delivery-1", 0.0), return_exceptions=True
        )
        assert sorted(type(r).__name__ for r in results) == ["Claim", "Replayed"], results
