"""The baseline: a bare workflow running a given number of no-op activities (`bench.cases`
passes as many as an S5 case runs). Workflow code only: it is imported into the sandbox."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow


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
