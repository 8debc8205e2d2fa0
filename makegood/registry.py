"""What a Makegood worker registers (workflows, activities, the sandbox) and a Replayer that
runs the same workflow code the same way, for tests and auditors."""

from __future__ import annotations

import contextlib
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
from makegood.domain import contract
from makegood.observe.metrics import MetricsInterceptor
from makegood.privacy.codec import keys_of
from makegood.settings import DEFAULT_WORKFLOW_CACHE
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
# Workers share Makegood's own workflow modules too: re-importing them took a fifth of a busy
# worker's time (half while cases came back from outside the cache) and most of a cached
# case's memory. Shared, they are not re-checked by the sandbox's import-time
# restrictions (`datetime.now`, `random`, `os.environ` in workflow code); builtins such as
# `open` still are. So the test suite runs every workflow under the strict sandbox (`strict`),
# and a test keeps these modules free of state that one case could leave for another.
SHARED_WORKFLOWS = "makegood.workflows"


def workflow_runner(*, strict: bool = False) -> SandboxedWorkflowRunner:
    """The sandbox workers run cases in; `strict` re-imports the workflow modules per run and
    applies every restriction to them (the test suite's sandbox)."""
    bytecode.ensure()  # whatever is re-imported, without compiling it again
    shared = PASSTHROUGH if strict else (*PASSTHROUGH, SHARED_WORKFLOWS)
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*shared)
    )


STICKY_TIMEOUT = timedelta(seconds=3)


def worker_interceptors() -> list[Interceptor]:
    """Heartbeats for every activity (a dead worker is noticed in seconds) and the metrics."""
    return [HeartbeatInterceptor(), MetricsInterceptor()]


# The first-contact lane's own activity slots: first messages are quick, and this many at once
# is more than a worker starts cases.
LANE_SLOTS = 20


class CaseWorkers:
    """A worker for the cases' task queue and one for its first-contact lane
    (`contract.first_contact_queue`), started and stopped together: `async with`."""

    def __init__(self, cases: Worker, lane: Worker) -> None:
        self.cases, self.lane = cases, lane
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> CaseWorkers:
        await self._stack.enter_async_context(self.cases)
        await self._stack.enter_async_context(self.lane)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()


def case_workers(
    client: Client,
    task_queue: str,
    activities: Sequence[object],
    *,
    runner: WorkflowRunner | None = None,
    interceptors: Sequence[Interceptor] | None = None,
    graceful_shutdown: timedelta = timedelta(0),
    activity_slots: int | None = None,
    workflow_cache: int = DEFAULT_WORKFLOW_CACHE,
) -> CaseWorkers:
    """The workers of the cases on `task_queue` and of their first-contact lane.
    `activity_slots`: calls the case queue's worker runs at once (the SDK's default, 100);
    `workflow_cache`: cases kept in memory between tasks (`Settings.workflow_cache`)."""
    chain = list(worker_interceptors() if interceptors is None else interceptors)
    cases = Worker(
        client,
        task_queue=task_queue,
        workflows=list(WORKFLOWS),
        activities=activities,  # type: ignore[arg-type]
        workflow_runner=runner or workflow_runner(),
        interceptors=chain,
        graceful_shutdown_timeout=graceful_shutdown,
        # A worker that died leaves its cases' next tasks on its own (sticky) queue: after this
        # long another worker takes them (the SDK's default waits 10 s).
        sticky_queue_schedule_to_start_timeout=STICKY_TIMEOUT,
        max_concurrent_activities=activity_slots,
        max_cached_workflows=workflow_cache,
    )
    # The lane carries only first messages; it registers the same activities so that what it
    # runs is exactly what the case queue would have run.
    lane = Worker(
        client,
        task_queue=contract.first_contact_queue(task_queue),
        activities=activities,  # type: ignore[arg-type]
        interceptors=chain,
        graceful_shutdown_timeout=graceful_shutdown,
        max_concurrent_activities=LANE_SLOTS,
    )
    return CaseWorkers(cases, lane)


def build_worker(
    client: Client,
    task_queue: str,
    activities: Sequence[object],
    *,
    runner: WorkflowRunner | None = None,
    graceful_shutdown: timedelta = timedelta(0),
    index: CaseIndex | None = None,
    archive: BlobStore | None = None,
    workflow_cache: int = DEFAULT_WORKFLOW_CACHE,
) -> CaseWorkers:
    """A Makegood worker: the providers' `activities` and the case history's own.

    `graceful_shutdown`: how long activities in flight may finish when the worker stops
    before they are cancelled (and retried by another worker). Without `index` the case index
    activities record nothing (tests, mostly)."""
    history = HistoryActivities(client, keys_of(client).pseudonyms, index, archive)
    return case_workers(
        client,
        task_queue,
        [
            *activities,
            history.find_related_cases,
            history.index_case_opened,
            history.index_case_closed,
        ],
        runner=runner,
        graceful_shutdown=graceful_shutdown,
        workflow_cache=workflow_cache,
    )


def build_replayer(
    *,
    quiet: bool = False,
    sandbox: bool = True,
    strict: bool = False,
    data_converter: DataConverter | None = None,
) -> Replayer:
    """Replays histories against the workflow code installed here, as the worker runs it.

    `quiet` keeps the SDK core from logging each non-deterministic history as a warning:
    the replay report says it once, with the event. `data_converter` must be the workers'
    (`makegood.privacy.codec.data_converter(keys)`) for encrypted histories; without it only
    unencrypted ones (the committed scenario histories) replay. `strict`: the test suite's
    sandbox (`workflow_runner`).
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
    runner = workflow_runner(strict=strict) if sandbox else UnsandboxedWorkflowRunner()
    return Replayer(
        workflows=list(WORKFLOWS),
        data_converter=data_converter or pydantic_data_converter,
        workflow_runner=runner,
        runtime=runtime,
    )
