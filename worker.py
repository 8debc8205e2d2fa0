"""The Makegood worker: adapters from settings, workflows and activities on one task queue.

    python worker.py              # against MAKEGOOD_TEMPORAL_ADDRESS (default localhost:7233)
    python worker.py --embedded   # the dev server and the intake API too (`make run`)
    python worker.py --api        # worker and intake API against an existing server
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass

import structlog
import uvicorn
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner, Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

import logsetup
from activities.calls import all_activities
from activities.history import HistoryActivities
from adapters.base import Notifier, OutcomeStore, Payments, ProductControl, Telephony
from adapters.local.providers import (
    LocalNotifier,
    LocalOutcomes,
    LocalPayments,
    LocalProductControl,
    LocalTelephony,
)
from adapters.local.store import LocalStore
from adapters.real.http import (
    HttpNotifier,
    HttpPayments,
    HttpProductControl,
    HttpProvider,
    HttpTelephony,
)
from adapters.real.smtp import SmtpConfig, SmtpNotifier
from adapters.routing import ChannelRouter
from devserver import dev_server
from intake.api import create_app
from intake.visibility import ensure_search_attributes
from settings import Settings
from temporal_client import connect
from workflows.callback import CallbackWorkflow
from workflows.recovery import RecoveryWorkflow

log = structlog.get_logger("makegood.worker")

WORKFLOWS: Sequence[type] = [RecoveryWorkflow, CallbackWorkflow]
# Deterministic third-party and domain modules are shared with the sandbox instead of being
# re-imported for every workflow run: that re-import is the sandbox's main cost.
PASSTHROUGH = ("pydantic", "pydantic_core", "pydantic_extra_types", "pycountry",
               "email_validator", "domain", "activities")


@dataclass
class Adapters:
    notifier: Notifier
    payments: Payments
    product: ProductControl
    telephony: Telephony
    outcomes: OutcomeStore

    def activities(self) -> list[object]:
        return all_activities(self.notifier, self.payments, self.product, self.telephony,
                              self.outcomes)


@contextlib.asynccontextmanager
async def configured_adapters(settings: Settings) -> AsyncIterator[Adapters]:
    """The adapters the settings ask for: `local` ones over SQLite, or SMTP and HTTP."""
    store = await LocalStore(settings.store_path).open()
    clients: list[HttpProvider] = []

    def http(url: str) -> HttpProvider:
        clients.append(HttpProvider(url, settings.provider_secret.get_secret_value(),
                                    timeout_s=settings.provider_timeout_s))
        return clients[-1]

    try:
        if settings.seed is not None and settings.seed.exists():
            await store.seed_file(settings.seed)
        local = LocalNotifier(store)
        email = SmtpNotifier(SmtpConfig(
            host=settings.smtp_host, port=settings.smtp_port, sender=settings.smtp_sender,
            starttls=settings.smtp_starttls, tls=settings.smtp_tls,
            username=settings.smtp_username, password=settings.smtp_password,
            ca_file=settings.smtp_ca_file),
            store) if settings.email == "smtp" else local
        sms = HttpNotifier(http(settings.sms_url)) if settings.sms == "http" else local
        push = HttpNotifier(http(settings.push_url)) if settings.push == "http" else local
        yield Adapters(
            ChannelRouter(email=email, sms=sms, app=push),
            HttpPayments(http(settings.payments_url)) if settings.payments == "http"
            else LocalPayments(store),
            HttpProductControl(http(settings.product_url)) if settings.product == "http"
            else LocalProductControl(store),
            HttpTelephony(http(settings.telephony_url)) if settings.telephony == "http"
            else LocalTelephony(store),
            LocalOutcomes(store),
        )
    finally:
        for client in clients:
            await client.close()
        await store.close()


def workflow_runner() -> SandboxedWorkflowRunner:
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)
    )


def build_worker(client: Client, task_queue: str, activities: Sequence[object], *,
                 runner: WorkflowRunner | None = None) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=list(WORKFLOWS),
        activities=[*activities, HistoryActivities(client).find_related_cases],  # type: ignore[list-item]
        workflow_runner=runner or workflow_runner(),
    )


def build_replayer(*, quiet: bool = False, sandbox: bool = True) -> Replayer:
    """Replays histories against the workflow code of this checkout, as the worker runs it.

    `quiet` keeps the SDK core from logging each non-deterministic history as a warning:
    the replay report says it once, with the event.
    """
    runtime = Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(
        filter=TelemetryFilter(core_level="ERROR", other_level="ERROR")))) if quiet else None
    runner = workflow_runner() if sandbox else UnsandboxedWorkflowRunner()
    return Replayer(workflows=list(WORKFLOWS), data_converter=pydantic_data_converter,
                    workflow_runner=runner, runtime=runtime)


class _ApiServer(uvicorn.Server):
    """Uvicorn without its own signal handling: the worker's stop event shuts it down."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_api(settings: Settings, client: Client, stop: asyncio.Event) -> None:
    config = uvicorn.Config(create_app(settings, client), host=settings.api_host,
                            port=settings.api_port, log_config=None, access_log=False,
                            lifespan="on")
    server = _ApiServer(config)
    task = asyncio.create_task(server.serve())
    log.info("api_started", url=f"http://{settings.api_host}:{settings.api_port}",
             docs=f"http://{settings.api_host}:{settings.api_port}/docs")
    await stop.wait()
    server.should_exit = True
    await task


async def run(settings: Settings, stop: asyncio.Event, *, api: bool = False) -> None:
    playbooks = settings.playbook_set  # fail fast on a bad playbook file
    client = await connect(settings)
    added = await ensure_search_attributes(client)
    if added:
        log.info("search_attributes_registered", names=added)
    async with configured_adapters(settings) as adapters:
        worker = build_worker(client, settings.task_queue, adapters.activities())
        log.info("worker_started", task_queue=settings.task_queue,
                 address=settings.temporal_address, playbooks=playbooks.version,
                 store=str(settings.store_path))
        async with worker:
            if api:
                await serve_api(settings, client, stop)
            else:
                await stop.wait()
            log.info("worker_stopping")
    log.info("worker_stopped")


async def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedded", action="store_true",
                        help="start the local Temporal dev server (SQLite file, web UI) and the "
                             "intake API as well")
    parser.add_argument("--api", action="store_true",
                        help="serve the intake API from this process (on by --embedded)")
    parser.add_argument("--no-api", action="store_true", help="with --embedded: no API")
    args = parser.parse_args(argv)
    settings = Settings()
    logsetup.configure(settings.log_format, settings.log_level)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if args.embedded:
        async with dev_server(settings):
            await run(settings, stop, api=not args.no_api)
    else:
        await run(settings, stop, api=args.api)


if __name__ == "__main__":
    asyncio.run(main())
