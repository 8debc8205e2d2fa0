"""Readiness that means the worker is polling: its metrics endpoint shows a workflow-task poller
on the task queue and an activity poller on its first-contact lane. `makegood ready` asks it
(compose's health check of the worker); a worker that connected but never polled, or lost its
pollers, is not ready.
"""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from makegood.domain.contract import first_contact_queue

POLLERS = "temporal_num_pollers"


def pollers(metrics_text: str, task_queue: str, kind: str = "workflow_task") -> int:
    """Pollers of `kind` (workflow_task, activity_task) on `task_queue`, from a Prometheus
    exposition."""
    count = 0.0
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            labels = sample.labels
            if (
                sample.name == POLLERS
                and labels.get("task_queue") == task_queue
                and labels.get("poller_type") == kind
            ):
                count += sample.value
    return int(count)


async def check(metrics_url: str, task_queue: str) -> str | None:
    """None when ready, else why not."""
    try:
        async with httpx.AsyncClient(timeout=3) as http:
            reply = await http.get(metrics_url)
    except httpx.HTTPError as err:
        return f"no metrics at {metrics_url} ({type(err).__name__}): is the worker up?"
    if reply.status_code != 200:
        return f"{metrics_url} answered {reply.status_code}"
    if pollers(reply.text, task_queue) < 1:
        return f"the worker is not polling task queue {task_queue!r} (yet)"
    lane = first_contact_queue(task_queue)
    if pollers(reply.text, lane, "activity_task") < 1:
        return f"the worker is not polling the first-contact lane {lane!r} (yet)"
    return None
