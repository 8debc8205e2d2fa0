"""The long-running processes: the worker, the intake API, and the embedded dev stack.

makegood worker          # workflows and activities, where TEMPORAL_* settings point
makegood api             # the intake API alone (scale it on its own; compose's default)
makegood worker --api    # both in one process: workflow tasks share the API's event loop
makegood dev             # the local Temporal dev server + worker + API (`make run`)
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator
from datetime import timedelta

import structlog
import uvicorn
from temporalio.client import Client

from makegood import logsetup, secure
from makegood.adapters.wiring import configured_adapters
from makegood.api.app import create_app
from makegood.archiver import Archiver
from makegood.connection import (
    IMPATIENT,
    TemporalConnection,
    connect,
    connection_keys,
    load_connection,
)
from makegood.devserver import dev_server, set_retention
from makegood.index import ReplyBook, opened_index
from makegood.observe.telemetry import DEV_METRICS, install_runtime, tracer_provider, tracing
from makegood.privacy.keys import KeyRing
from makegood.registry import build_worker
from makegood.settings import Settings
from makegood.visibility import ensure_search_attributes

log = structlog.get_logger("makegood.serve")


class ApiServer(uvicorn.Server):
    """Uvicorn without its own signal handling: the process's stop event shuts it down."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def api_config(settings: Settings, client: Client) -> uvicorn.Config:
    """Uvicorn for the intake API: h11 (pure Python, the same whatever extras are installed),
    no WebSocket upgrades (no route takes one), idle keep-alive connections closed after 5 s,
    request heads capped at 16 KiB (bodies are the app's BodyLimit's), and at most 10 s to
    finish the requests in flight on shutdown."""
    return uvicorn.Config(
        create_app(settings, client),
        host=settings.api_host,
        port=settings.api_port,
        http="h11",
        ws="none",
        timeout_keep_alive=5,
        h11_max_incomplete_event_size=16 * 1024,
        timeout_graceful_shutdown=10,
        log_config=None,
        access_log=False,
        lifespan="on",
    )


async def serve_api(settings: Settings, client: Client, stop: asyncio.Event) -> None:
    config = api_config(settings, client)
    server = ApiServer(config)
    task = asyncio.create_task(server.serve())
    log.info(
        "api_started",
        url=f"http://{settings.api_host}:{settings.api_port}",
        docs=f"http://{settings.api_host}:{settings.api_port}/docs",
        console=f"{settings.base_url}/console",
    )
    await stop.wait()
    server.should_exit = True
    await task


async def run(
    settings: Settings,
    connection: TemporalConnection,
    stop: asyncio.Event,
    *,
    worker: bool = True,
    api: bool = False,
    keys: KeyRing | None = None,
    embedded: bool = False,
) -> None:
    """Serve until `stop` is set: the worker, the API, or both in this process."""
    playbooks = settings.playbook_set  # fail fast on a bad playbook file
    keys = keys or connection_keys(settings, connection)
    if worker:  # before the worker's client: the SDK's runtime serves the metrics
        if settings.metrics_bind:
            install_runtime(settings.metrics_bind)
        elif embedded:
            install_runtime(DEV_METRICS, required=False)
    service = "makegood-worker" if worker else "makegood-api"
    traces = tracer_provider(settings.otlp_endpoint, service) if settings.otlp_endpoint else None
    client = await connect(
        connection, keys, retry=None if worker else IMPATIENT, interceptors=tracing(traces)
    )
    if embedded:  # our own dev server: closed cases stay findable for retention_days
        await set_retention(client, connection.namespace, settings.retention_days)
    added = await ensure_search_attributes(client)
    if added:
        log.info("search_attributes_registered", names=added)
    if not worker:
        await serve_api(settings, client, stop)
        return
    archive = settings.archive()
    async with (
        configured_adapters(settings) as adapters,
        opened_index(
            settings.case_index, default=settings.case_index_default, database=settings.database_url
        ) as index,
    ):
        adapters.replies = ReplyBook(index, keys.pseudonyms)
        running = build_worker(
            client,
            settings.task_queue,
            adapters.activities(),
            graceful_shutdown=timedelta(seconds=settings.shutdown_grace_s),
            index=index,
            archive=archive,
            workflow_cache=settings.workflow_cache,
        )
        # Closed cases go to the archive from here: a case cannot export its own history.
        archiver = Archiver(client, index, archive, every=settings.archive_every_s)
        log.info(
            "worker_started",
            task_queue=settings.task_queue,
            **connection.summary(),
            playbooks=playbooks.version,
            store=str(settings.store_path),
            **keys.summary(),
        )
        async with running:
            archiving = asyncio.create_task(archiver.run(stop))
            if api:
                await serve_api(settings, client, stop)
            else:
                await stop.wait()
            log.info("worker_stopping")
            await archiving
    log.info("worker_stopped")
    if traces is not None:
        traces.shutdown()  # the spans still batched go out before the process ends


async def serve(*, embedded: bool = False, worker: bool = True, api: bool = False) -> None:
    """A process that stops cleanly on SIGINT and SIGTERM; `embedded` starts the dev server."""
    settings = Settings()
    connection = load_connection(settings)  # bad settings stop here, before anything starts
    # So do public dev credentials beyond loopback or with real providers (makegood.secure),
    # before the local key file is made.
    secure.check(
        settings, secure.listeners(settings, connection, api=api, embedded=embedded), api=api
    )
    keys = connection_keys(settings, connection)  # and missing or malformed keys
    logsetup.configure(settings.log_format, settings.log_level, settings.secret_values())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if embedded:
        async with dev_server(settings, connection, codec=api):
            await run(settings, connection, stop, worker=worker, api=api, keys=keys, embedded=True)
    else:
        await run(settings, connection, stop, worker=worker, api=api, keys=keys)
