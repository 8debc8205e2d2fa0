"""S6: a support call that drops, a scheduling system that fails, and a hand-off to a person.

The telephony provider's status callbacks are signals to the case's call-back workflow;
they are delivered here the way a provider does: late, twice, out of order.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from makegood.adapters.base import TransientProviderError
from makegood.adapters.local.providers import LocalTelephony
from makegood.adapters.local.store import LocalStore
from makegood.adapters.wiring import Adapters
from makegood.audit.timeline import failure_text
from makegood.domain import contract
from makegood.domain.case import CallbackState, CallStatus
from makegood.domain.provider import CallRequest, ScheduledCall
from makegood.privacy.codec import decode_history
from makegood.registry import build_worker
from tests.harness import Case, keys, local_adapters, start, ticket

OPS = "ops@makegood.example.com"


class FailingScheduler:
    """A scheduling system that answers "unable to schedule your call" `failures` times."""

    def __init__(self, inner: LocalTelephony, failures: int | None) -> None:
        self.inner, self.failures, self.calls = inner, failures, Counter[str]()

    async def schedule_call(self, key: str, req: CallRequest) -> ScheduledCall:
        self.calls[key] += 1
        if self.failures is None or sum(self.calls.values()) <= self.failures:
            raise TransientProviderError("unable to schedule your call", code="503")
        return await self.inner.schedule_call(key, req)


class Call:
    """The case's call-back workflow, as the telephony provider and the test see it."""

    def __init__(self, case: Case) -> None:
        self.case = case
        self.handle: WorkflowHandle[Any, Any] = case.client.get_workflow_handle(
            contract.callback_id(case.id)
        )
        self.deliveries = 0

    async def state(self) -> CallbackState:
        return await self.handle.query(contract.CALLBACK_STATE_QUERY, result_type=CallbackState)

    async def waiting_on(self, number: int, *, skip: timedelta | None = None) -> str:
        """The call id of call `number` once it is booked (skipping time while it is not).

        Bounded by wall time, not by a count of polls, so a loaded machine is given as long."""
        deadline = asyncio.get_running_loop().time() + 30
        while asyncio.get_running_loop().time() < deadline:
            try:
                state = await self.state()
                if (
                    len(state.attempts) >= number
                    and state.state == "waiting"
                    and state.attempts[number - 1].call_id
                ):
                    return state.attempts[number - 1].call_id  # type: ignore[return-value]
            except Exception:  # the child has not started yet
                pass
            if skip is not None:
                await self.case.skip(skip)
            else:
                await asyncio.sleep(0.02)
        raise AssertionError(f"call {number} was never booked")

    async def report(self, call_id: str, status: str, event_id: str | None = None) -> None:
        self.deliveries += 1
        await self.handle.signal(
            contract.CALL_STATUS_SIGNAL,
            CallStatus(
                call_id=call_id, status=status, event_id=event_id or f"evt-{self.deliveries}"
            ),
        )


async def open_s6(env: WorkflowEnvironment, store: LocalStore, task_queue: str) -> Case:
    t = ticket("s6-support-call.json")
    due = (await env.get_current_time()) + timedelta(hours=1)
    t = t.model_copy(update={"incident": t.incident.model_copy(update={"call_at": due})})
    return await start(env.client, store, t, task_queue, env=env)


async def test_s6_call_drops_twice_then_the_third_call_completes(
    env: WorkflowEnvironment, store: LocalStore, task_queue: str
) -> None:
    case = await open_s6(env, store, task_queue)
    call = Call(case)
    first = await call.waiting_on(1)
    await call.report(first, "dropped", "evt-a")
    await call.report(first, "dropped", "evt-a")  # the provider delivers it again
    second = await call.waiting_on(2)
    await call.report(second, "dropped")
    third = await call.waiting_on(3)
    await call.report(first, "completed", "evt-late")  # a late word about the first call
    await call.report(third, "completed")
    status = await case.until(lambda s: s.stage == "follow_up", "follow-up")

    assert status.callback is not None and status.callback.state == "completed"
    assert [a.outcome for a in status.callback.attempts] == ["dropped", "dropped", "completed"]
    assert status.callback.ignored_callbacks == [
        f"evt-late: completed for {first} arrived after that call was settled"
    ]
    calls = await store.rows("SELECT key FROM calls ORDER BY created_at")
    assert keys(calls) == ["callback:call:1", "callback:call:2", "callback:call:3"]
    customer = keys([m for m in await case.messages() if m["recipient"] != OPS])
    assert customer == [
        "ack:email",
        "callback:call-booked:email",
        "callback:redial-1:sms",
        "callback:redial-2:sms",
        "confirm:email",
    ]
    texts = [m["body"] for m in await case.messages() if m["key"].endswith("redial-1:sms")]
    assert "our call dropped. We are calling you back at" in texts[0]
    assert not status.escalations
    assert any(e.kind == "called" and "attempt 3" in e.detail for e in status.events)
    await case.skip(timedelta(days=2))
    await case.answer("follow-up-1", "satisfied")
    await case.result()
    await case.replay(record="s6")


async def test_s6_a_call_with_no_status_callback_is_called_again(
    env: WorkflowEnvironment, store: LocalStore, task_queue: str
) -> None:
    case = await open_s6(env, store, task_queue)
    call = Call(case)
    await call.waiting_on(1)
    # The provider never reports on the first call: after the call was due plus the
    # playbook's 15 minutes, the customer is texted and called again.
    second = await call.waiting_on(2, skip=timedelta(minutes=20))
    await call.report(second, "completed")
    status = await case.until(lambda s: s.stage == "follow_up", "follow-up")
    assert status.callback is not None
    assert [a.outcome for a in status.callback.attempts] == ["no_callback", "completed"]
    redial = [m["body"] for m in await case.messages() if m["key"].endswith("redial-1:sms")]
    assert "we did not manage to connect the call" in redial[0]


@pytest.fixture
def adapters(store: LocalStore) -> Adapters:
    return local_adapters(store)


async def test_s6_scheduling_fails_three_times_then_recovers(
    bare_env: WorkflowEnvironment, store: LocalStore, adapters: Adapters, task_queue: str
) -> None:
    scheduler = FailingScheduler(LocalTelephony(store), failures=3)
    adapters.telephony = scheduler
    async with build_worker(bare_env.client, task_queue, adapters.activities()):
        case = await open_s6(bare_env, store, task_queue)
        call = Call(case)
        first = await call.waiting_on(1, skip=timedelta(seconds=30))
        state = await call.state()
        await call.report(first, "completed")
        await case.until(lambda s: s.stage == "follow_up", "follow-up")

    assert state.attempts[0].schedule_failures == ["unable to schedule your call"] * 3
    assert scheduler.calls == {f"{case.id}:callback:call:1": 4}
    assert len(await store.rows("SELECT id FROM calls")) == 1
    customer = keys([m for m in await case.messages() if m["recipient"] != OPS])
    assert customer == [
        "ack:email",
        "callback:scheduling-1:sms",
        "callback:call-booked:email",
        "confirm:email",
    ]
    # Every failed try is in the call-back workflow's history, with its reason (encrypted:
    # read with the key).
    history = await decode_history(await call.handle.fetch_history(), case.client.data_converter)
    failures = [e for e in history.events if e.HasField("activity_task_failed_event_attributes")]
    assert len(failures) == 3
    assert all(
        failure_text(e.activity_task_failed_event_attributes.failure)
        == "unable to schedule your call"
        for e in failures
    )


async def test_s6_scheduling_never_recovers_and_a_person_takes_over(
    bare_env: WorkflowEnvironment, store: LocalStore, adapters: Adapters, task_queue: str
) -> None:
    scheduler = FailingScheduler(LocalTelephony(store), failures=None)
    adapters.telephony = scheduler
    async with build_worker(bare_env.client, task_queue, adapters.activities()):
        case = await open_s6(bare_env, store, task_queue)
        for _ in range(60):
            status = await case.status()
            if status.stage == "follow_up":
                break
            await case.skip(timedelta(minutes=5))
        else:
            raise AssertionError("the case never moved on")

    assert status.callback is not None and status.callback.state == "handed_off"
    assert [a.outcome for a in status.callback.attempts] == ["not_scheduled"]
    assert status.callback.attempts[0].schedule_failures == ["unable to schedule your call"] * 6
    assert sum(scheduler.calls.values()) == 6, "bounded by the playbook's backoff attempts"
    assert await store.rows("SELECT id FROM calls") == []
    customer = [m for m in await case.messages() if m["recipient"] != OPS]
    assert keys(customer) == [
        "ack:email",
        "callback:scheduling-1:sms",
        "callback:handed-off:sms",
        "confirm:email",
    ]
    assert "will call you personally by" in customer[2]["body"]
    (ops,) = [m for m in await case.messages() if m["recipient"] == OPS]
    assert "+15550100060" in ops["body"]
    assert "6 failed scheduling attempt(s) (unable to schedule your call)" in ops["body"]
    assert "a colleague, who calls you personally on +15550100060" in customer[-1]["body"]
