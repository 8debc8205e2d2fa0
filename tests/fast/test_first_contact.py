"""A case's first word to the customer goes on a lane of its own (a task queue beside the
case's, with its own slots in every worker): the apology is never queued behind slower calls."""

from __future__ import annotations

import asyncio

from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from makegood.domain import calls, contract
from makegood.registry import case_workers
from tests.fakes import Fakes
from tests.fast.driver import Case, Runner


async def first_contact(case: Case) -> bool:
    for _ in range(250):
        if (await case.status()).first_contact_at is not None:
            return True
        await asyncio.sleep(0.02)
    return False


async def test_the_apology_does_not_wait_behind_a_slow_call(
    server: WorkflowEnvironment, fakes: Fakes
) -> None:
    runner = Runner(server, fakes)
    slow = fakes.on(calls.REMAKE_ORDER).hold()  # the first case's remake: the slot is taken
    async with case_workers(server.client, runner.task_queue, fakes.activities(), activity_slots=1):
        first = await runner.open("s5-wrong-drink.json")
        await asyncio.wait_for(slow.entered.wait(), 5)
        second = await runner.open("s5-wrong-drink.json")
        # The second case's apology went out while the case queue's only slot is still busy.
        assert await first_contact(second)
        assert second.to_customer() == ["ack:sms"] and not second.effects("verify_ownership")
        slow.release()
        for case in (first, second):
            assert (await case.result()).resolution == "resolved"
        history = await second.handle.fetch_history()
    queues = [
        e.activity_task_scheduled_event_attributes.task_queue.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    lane = contract.first_contact_queue(runner.task_queue)
    assert queues[0] == lane and set(queues[1:]) == {runner.task_queue}  # the first only
    await runner.close()
