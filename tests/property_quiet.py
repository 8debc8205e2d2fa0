"""Quiet points: when a case and its call-back have nothing in flight (no workflow task, no
activity), read from their histories, so the property suite checks a case only where it
stands still, and recognises a wedged case (a workflow task failing in the workflow's code)
at once."""

from __future__ import annotations

import asyncio

from temporalio.api.enums.v1 import WorkflowTaskFailedCause
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from makegood.audit.timeline import failure_text
from makegood.domain import ids
from makegood.privacy.codec import decode_history

SETTLE_WITHIN_S = 15.0
REJECTED_AFTER_S = 2.0  # a workflow task takes milliseconds here; see CompletionRejected
UNHANDLED_FAILURE = (
    WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_WORKFLOW_WORKER_UNHANDLED_FAILURE
)


class Wedged(AssertionError):
    """The case stopped moving: a workflow task keeps failing, or it never went quiet."""


class CompletionRejected(Exception):
    """A workflow task was started and never completed nor failed: the time-skipping test
    server refused its completion. It does so when a task that the case cancels as it closes
    (the SLA watcher, the settlement watcher) was waiting on an activity whose result arrived
    in the same workflow task: the SDK then asks to cancel an activity that has completed,
    which the real server records and ignores but the test server rejects ("ACTIVITY_UNKNOWN
    for scheduledEventId=..."), on every retry. Measured with the same case (a wrong order
    reported three days ago, so SLA alarms fly as it closes): stuck in 9 of 12 runs on the
    test server, 0 of 12 on the dev server. A harness limit, not the case's: such a plan is
    discarded (`hypothesis.reject`), never counted as passing."""


async def settle(client: Client, case_id: str) -> None:
    """Wait until neither the case nor its call-back has a workflow task or an activity in
    flight, twice in a row with no new event in between (the test server does not write a
    child's completion into its parent's history in the same step). Read from their
    histories: the time-skipping server's describe leaves pending work out. A workflow
    task that failed in the workflow's code is a wedged case."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + SETTLE_WITHIN_S
    started: dict[str, float] = {}  # a started workflow task -> when it was first seen
    quiet_at: int | None = None  # the number of events when it was last seen quiet
    while True:
        busy: list[str] = []
        events = 0
        for wid in (case_id, ids.callback_id(case_id)):
            found, n = await _in_flight(client, wid)
            busy += found
            events += n
        if not busy:
            if quiet_at == events:
                return
            quiet_at = events
        else:
            quiet_at = None
        for task in (b for b in busy if "workflow task started" in b):
            since = started.setdefault(task, loop.time())
            if loop.time() - since > REJECTED_AFTER_S:
                raise CompletionRejected(task)
        if loop.time() > give_up:
            raise Wedged(f"never went quiet: {', '.join(busy)}")
        await asyncio.sleep(0.03)


async def _in_flight(client: Client, wid: str) -> tuple[list[str], int]:
    """What is in flight in one workflow, and how many events its history has."""
    try:
        history = await client.get_workflow_handle(wid).fetch_history()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return [], 0
        raise
    open_tasks: set[int] = set()
    running_task: int | None = None  # the started workflow task's event, while it runs
    activities: dict[int, str] = {}
    failed = None
    for e in history.events:
        if e.HasField("workflow_task_scheduled_event_attributes"):
            open_tasks.add(e.event_id)
        elif e.HasField("workflow_task_started_event_attributes"):
            running_task = e.event_id
        elif e.HasField("workflow_task_completed_event_attributes"):
            open_tasks.discard(e.workflow_task_completed_event_attributes.scheduled_event_id)
            failed = None
        elif e.HasField("workflow_task_failed_event_attributes"):
            attrs = e.workflow_task_failed_event_attributes
            open_tasks.discard(attrs.scheduled_event_id)
            if attrs.cause == UNHANDLED_FAILURE:
                failed = attrs.failure
        elif e.HasField("workflow_task_timed_out_event_attributes"):
            open_tasks.discard(e.workflow_task_timed_out_event_attributes.scheduled_event_id)
        elif e.HasField("activity_task_scheduled_event_attributes"):
            activities[e.event_id] = e.activity_task_scheduled_event_attributes.activity_type.name
        elif e.HasField("activity_task_completed_event_attributes"):
            activities.pop(e.activity_task_completed_event_attributes.scheduled_event_id, None)
        elif e.HasField("activity_task_failed_event_attributes"):
            activities.pop(e.activity_task_failed_event_attributes.scheduled_event_id, None)
        elif e.HasField("activity_task_timed_out_event_attributes"):
            activities.pop(e.activity_task_timed_out_event_attributes.scheduled_event_id, None)
        elif e.HasField("activity_task_canceled_event_attributes"):
            activities.pop(e.activity_task_canceled_event_attributes.scheduled_event_id, None)
    if failed is not None:
        raise Wedged(f"{wid}: a workflow task failed and is retried: {await _why(client, wid)}")
    tasks = []
    if open_tasks:
        started = running_task is not None and running_task > max(open_tasks)
        tasks = [
            f"{wid}: workflow task started at event {running_task}"
            if started
            else f"{wid}: workflow task"
        ]
    return tasks + [f"{wid}: {name}" for name in activities.values()], len(history.events)


async def _why(client: Client, wid: str) -> str:
    history = await decode_history(
        await client.get_workflow_handle(wid).fetch_history(),
        client.data_converter,
    )
    for e in reversed(history.events):
        if e.HasField("workflow_task_failed_event_attributes"):
            failure = e.workflow_task_failed_event_attributes.failure
            return f"{failure_text(failure)} {failure.stack_trace[-600:]}"
    return "no workflow task failure in the history"
