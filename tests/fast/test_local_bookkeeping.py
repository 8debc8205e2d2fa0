"""The case's bookkeeping (index rows, the look-up of earlier cases, the outcome record) runs
as local activities: one marker each in the history instead of three events and a workflow
task, read by the audit timeline like any other call; customer, money and product calls stay
activities of their own."""

from __future__ import annotations

from temporalio.api.enums.v1 import EventType

from makegood.audit.markers import local_activity
from makegood.audit.timeline import timeline
from makegood.domain import calls
from makegood.privacy.codec import decode_history
from tests.fast.driver import Runner

LOCAL = {spec.name for spec in calls.ALL if spec.local}


async def test_bookkeeping_runs_locally_and_the_timeline_still_reads_it(run: Runner) -> None:
    case = await run.open("s5-wrong-drink.json")
    await case.result()
    history = await decode_history(await case.handle.fetch_history(), run.env.client.data_converter)
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    local = [la.name for e in history.events if (la := local_activity(e)) is not None]
    assert sorted(local) == sorted(LOCAL) and not LOCAL & set(scheduled)
    assert calls.SEND_MESSAGE.name in scheduled and calls.MAKE_PAYMENT.name in scheduled
    kinds = {line.kind: line.text for line in timeline([history])}
    assert kinds["documented"] == "outcome recorded"
    assert kinds["history"] == "0 earlier case(s) of this customer or asset"


async def test_a_local_call_that_fails_is_an_activity_failure_in_case_and_timeline(
    run: Runner,
) -> None:
    run.fakes.on("index_case_closed").fail_permanently("index is read-only")
    run.fakes.on("find_related_cases").fail_always("visibility timed out")
    case = await run.open("s5-wrong-drink.json")
    outcome = await case.result()
    assert outcome.resolution == "resolved"  # neither failure is the case's
    status = await case.status()
    assert [e.detail for e in status.events if e.kind == "index"] == [
        "case index not updated: index is read-only"
    ]
    history = await decode_history(await case.handle.fetch_history(), run.env.client.data_converter)
    texts = [line.text for line in timeline([history])]
    assert "index_case_closed failed: index is read-only" in texts
    assert "find_related_cases failed after 3 attempts: visibility timed out" in texts
