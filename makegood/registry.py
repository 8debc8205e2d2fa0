"""What a Makegood worker registers (workflows, activities, the sandbox) and a Replayer that
runs the same workflow code the same way, for tests and auditors."""

from __future__ import annotations

from collections.abc import Sequence

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner, Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from makegood.activities.history import HistoryActivities
from makegood.workflows.callback import CallbackWorkflow
from makegood.workflows.recovery import RecoveryWorkflow

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
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)
    )


def build_worker(
    client: Client,
    task_queue: str,
    activities: Sequence[object],
    *,
    runner: WorkflowRunner | None = None,
) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=list(WORKFLOWS),
        activities=[*activities, HistoryActivities(client).find_related_cases],  # type: ignore[list-item]
        workflow_runner=runner or workflow_runner(),
    )


def build_replayer(*, quiet: bool = False, sandbox: bool = True) -> Replayer:
    """Replays histories against the workflow code installed here, as the worker runs it.

    `quiet` keeps the SDK core from logging each non-deterministic history as a warning:
    the replay report says it once, with the event.
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
        data_converter=pydantic_data_converter,
        workflow_runner=runner,
        runtime=runtime,
    )
