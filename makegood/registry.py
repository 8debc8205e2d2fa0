"""What a Makegood worker registers (workflows, activities, the sandbox) and a Replayer that
runs the same workflow code the same way, for tests and auditors."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.worker import (
    Interceptor,
    Replayer,
    UnsandboxedWorkflowRunner,
    Worker,
    WorkflowRunner,
)
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from makegood import bytecode
from makegood.activities.heartbeat import HeartbeatInterceptor
from makegood.activities.history import HistoryActivities
from makegood.observe.metrics import MetricsInterceptor
from makegood.privacy.codec import keys_of
from makegood.workflows.callback import CallbackWorkflow
from makegood.workflows.recovery import RecoveryWorkflow

if TYPE_CHECKING:
    from makegood.adapters.blobs import BlobStore
    from makegood.index import CaseIndex

WORKFLOWS: Sequence[type] = [RecoveryWorkflow, CallbackWorkflow]
# Deterministic third-party and domain modules are shared with the sandbox instead of being
# re-imported for every workflow run: that re-import is the sandbox's main cost.
PASSTHROUGH = (
    "pydantic",
    "pydantic_core",
    "pydantic_extra_types",
    "pycountry",
    "email_validator",
    "makegood.domain",
    "makegood.activities",
)


def workflow_runner() -> SandboxedWorkflowRunner:
    bytecode.ensure()  # the sandbox re-imports the workflow modules for every run
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)
    )


STICKY_TIMEOUT = timedelta(seconds=3)


def worker_interceptors() -> list[Interceptor]:
    """Heartbeats for every activity (a dead worker is noticed in seconds) and the metrics."""
    return [HeartbeatInterceptor(), MetricsInterceptor()]


def build_worker(
    client: Client,
    task_queue: str,
    activities: Sequence[object],
    *,
    runner: WorkflowRunner | None = None,
    graceful_shutdown: timedelta = timedelta(0),
    index: CaseIndex | None = None,
    archive: BlobStore | None = None,
) -> Worker:
    """`graceful_shutdown`: how long activities in flight may finish when the worker stops
    before they are cancelled (and retried by another worker). Without `index` the case index
    activities record nothing (tests, mostly)."""
    history = HistoryActivities(client, keys_of(client).pseudonyms, index, archive)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=list(WORKFLOWS),
        activities=[
            *activities,  # type: ignore[list-item]
            history.find_related_cases,
            history.index_case_opened,
            history.index_case_closed,
        ],
        workflow_runner=runner or workflow_runner(),
        interceptors=worker_interceptors(),
        graceful_shutdown_timeout=graceful_shutdown,
        # A worker that died leaves its cases' next tasks on its own (sticky) queue: after this
        # long another worker takes them (the SDK's default waits 10 s).
        sticky_queue_schedule_to_start_timeout=STICKY_TIMEOUT,
    )


def build_replayer(
    *, quiet: bool = False, sandbox: bool = True, data_converter: DataConverter | None = None
) -> Replayer:
    """Replays histories against the workflow code installed here, as the worker runs it.

    `quiet` keeps the SDK core from logging each non-deterministic history as a warning:
    the replay report says it once, with the event. `data_converter` must be the workers'
    (`makegood.privacy.codec.data_converter(keys)`) for encrypted histories; without it only
    unencrypted ones (the committed scenario histories) replay.
    """
    runtime = (
        Runtime(
            telemetry=TelemetryConfig(
                logging=LoggingConfig(
                    filter=TelemetryFilter(core_level="ERROR", other_level="ERROR")
                )
            )
        )
        if quiet
        else None
    )
    runner = workflow_runner() if sandbox else UnsandboxedWorkflowRunner()
    return Replayer(
        workflows=list(WORKFLOWS),
        data_converter=data_converter or pydantic_data_converter,
        workflow_runner=runner,
        runtime=runtime,
    )
