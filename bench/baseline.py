"""The baseline: a bare workflow with as many no-op activities as an S5 case runs, counted from
the committed S5 history (so the comparison stays fair as the case gains or loses a step)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from temporalio import activity, workflow

S5_HISTORY = Path(__file__).resolve().parent.parent / "tests" / "histories" / "s5.json"


def s5_activities() -> list[str]:
    """The activity types an S5 case schedules, in order (index, look-up, apology, ...)."""
    events = json.loads(S5_HISTORY.read_text())["events"]
    return [
        e["activityTaskScheduledEventAttributes"]["activityType"]["name"]
        for e in events
        if e["eventType"] == "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED"
    ]


STEPS = len(s5_activities())


@activity.defn
async def noop(step: int) -> int:
    return step


@workflow.defn
class BaselineWorkflow:
    @workflow.run
    async def run(self, steps: int) -> int:
        for step in range(steps):
            await workflow.execute_activity(
                noop, step, start_to_close_timeout=timedelta(seconds=30)
            )
        return steps
