"""Every activity heartbeats, so the server notices a dead worker within the heartbeat timeout
(not the 30 s start-to-close) while a live one may take as long as a provider needs."""

from __future__ import annotations

import asyncio

from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from makegood.domain import calls
from makegood.workflows.case import HEARTBEAT_TIMEOUT
from tests.fakes import Fakes
from tests.fast.driver import Runner


async def test_a_call_longer_than_the_heartbeat_timeout_runs_once(
    dev_env: WorkflowEnvironment,
) -> None:
    fakes = Fakes()
    held = fakes.on(calls.REMAKE_ORDER).hold()
    runner = Runner(dev_env, fakes)
    async with fakes.worker(dev_env.client, runner.task_queue):
        case = await runner.open("s5-wrong-drink.json")
        await asyncio.wait_for(held.entered.wait(), 30)
        # A slow kitchen: longer than the heartbeat timeout. The worker's heartbeats keep the
        # call alive; without them the server would time it out and start it again.
        await asyncio.sleep(HEARTBEAT_TIMEOUT.total_seconds() + 2)
        held.release()
        outcome = await case.result()
    assert outcome.resolution == "resolved"
    assert [c.attempt for c in fakes.called(calls.REMAKE_ORDER)] == [1]

    events = (await case.handle.fetch_history()).events
    scheduled = [
        e.activity_task_scheduled_event_attributes
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    assert scheduled and all(
        s.heartbeat_timeout.ToTimedelta() == HEARTBEAT_TIMEOUT for s in scheduled
    )
    assert not any(e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT for e in events)
