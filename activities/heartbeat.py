"""Every activity heartbeats while it runs, so a worker that dies mid-call is noticed within the
heartbeat timeout (`workflows.case.HEARTBEAT_TIMEOUT`, seconds) instead of the 30 s
start-to-close, and another worker retries the call (idempotently: the same key).

A worker interceptor does it for every activity, the receipt index's and the history look-up's
included, so no activity has to remember to.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

from temporalio import activity
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

INTERVAL = timedelta(seconds=2)


class _Beating(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, interval: timedelta) -> None:
        super().__init__(next)
        self.interval = interval.total_seconds()

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        if activity.info().is_local:  # runs within the case's workflow task: nothing to beat
            return await super().execute_activity(input)
        beat = asyncio.create_task(self._beat())
        try:
            return await super().execute_activity(input)
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat

    async def _beat(self) -> None:
        """The first beat after one interval: most calls are over by then and need none."""
        while True:
            await asyncio.sleep(self.interval)
            activity.heartbeat()


class HeartbeatInterceptor(Interceptor):
    def __init__(self, interval: timedelta = INTERVAL) -> None:
        self.interval = interval

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Beating(next, self.interval)
