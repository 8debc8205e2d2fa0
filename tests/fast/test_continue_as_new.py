"""A long case continues as new at a checkpoint and stays whole: status, what it did and
what it paid carry over, nothing is sent or paid twice, and both runs replay."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.api.enums.v1 import EventType

from makegood.cases import send
from makegood.domain import contract
from makegood.domain.actions import AgentNote
from makegood.registry import build_replayer
from tests.fast.driver import Runner, book
from tests.harness import AGENT

pytestmark = pytest.mark.fast


async def test_a_long_case_continues_as_new_and_stays_whole(solo: Runner) -> None:
    playbook_set = book("car_missing", limits={"history_events": 100, "notes": 200, "actions": 400})
    case = await solo.open("s1-missing-car.json", playbook_set)
    await case.question("locate-CAR-1-1")
    first_run = (await case.handle.describe()).run_id
    for n in range(30):  # every note is an update: five events or so each
        await send(solo.env.client, case.id, AgentNote(text=f"note {n}", by=AGENT))
    before = await case.status()
    assert before.question is not None  # no checkpoint while a question is open
    assert (await case.handle.describe()).run_id == first_run

    await case.answer("locate-CAR-1-1", "not_found")
    await case.answer("locate-CAR-1-2", "not_found")  # re-booked
    await case.answer("pickup-1", "picked_up")  # the remedy is done: a checkpoint
    # Wait for the next run without querying: the time-skipping test server can leave a
    # query that races the continue-as-new (sent to the run that just closed) unanswered.
    for _ in range(250):
        described = await case.handle.describe()
        if described.run_id != first_run:
            break
        await asyncio.sleep(0.02)
    assert described.run_id != first_run
    await case.question("claims")  # asked by the next run: it began after the remedy
    await case.answer("claims", "done")
    await case.approve("compensation")
    status = await case.until(lambda s: s.stage == "follow_up", "follow-up")

    # The second run knows all the first did.
    assert status.notes == before.notes and len(status.notes) == 30
    assert status.actions == 35  # 30 notes, four answers, an approval
    assert status.opened_at == before.opened_at and status.events[0] == before.events[0]
    assert [e.kind for e in status.events].count("continued") == 1
    assert [b.status for b in status.bookings] == ["released", "in_use"]
    assert [c.state for c in status.slas if c.name == "first_contact"] == ["met"]
    # Nothing twice: each step's message and booking happened once, over both runs.
    sent = case.to_customer()
    assert len(sent) == len(set(sent)) and sent[0] == "ack:email"
    assert case.steps("rebook_vehicle") == ["rebook:1"]
    # The limit's 21.00 at once, the rest once approved.
    assert case.paid() == [("refund:within-limit", "21.00 USD"), ("refund", "21.00 USD")]

    outcome = await case.result()
    assert outcome.resolution == "unreachable" and outcome.remedy_attempts == 1
    assert outcome.opened_at == before.opened_at

    # Both runs replay against today's code, the first ending in its continue-as-new.
    first = await solo.env.client.get_workflow_handle(case.id, run_id=first_run).fetch_history()
    second = await solo.env.client.get_workflow_handle(
        case.id, run_id=described.run_id
    ).fetch_history()
    assert first.events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    assert len(second.events) < len(first.events)
    replayer = build_replayer(quiet=True, data_converter=solo.env.client.data_converter)
    for history in (first, second):
        await replayer.replay_workflow(history)  # raises on any nondeterminism
    started = second.events[0].workflow_execution_started_event_attributes
    assert started.workflow_type.name == contract.RECOVERY_WORKFLOW
    assert started.continued_execution_run_id == first_run
