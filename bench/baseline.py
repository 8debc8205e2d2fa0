"""The baseline: a bare workflow running a given number of no-op activities (`bench.cases`
passes as many as an S5 case runs), some of them as local activities if asked. Workflow code
only: it is imported into the sandbox."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow


@activity.defn
async def noop(step: int) -> int:
    return step


@workflow.defn
class BaselineWorkflow:
    @workflow.run
    async def run(self, steps: int, local: int = 0) -> int:
        """`steps` no-op calls, the first `local` of them local activities."""
        for step in range(steps):
            if step < local:
                await workflow.execute_local_activity(
                    noop, step, start_to_close_timeout=timedelta(seconds=30)
                )
            else:
                await workflow.execute_activity(
                    noop, step, start_to_close_timeout=timedelta(seconds=30)
                )
        return steps
