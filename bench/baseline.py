"""The baseline: a bare workflow with as many no-op activities as an S5 case runs."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow

STEPS = 6  # S5: history lookup, apology, remake, refund, confirmation, outcome record


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
