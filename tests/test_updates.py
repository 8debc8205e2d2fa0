"""Nonsensical actions are refused with the reason and leave no trace in the case."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from makegood.adapters.local.store import LocalStore
from makegood.cases import CaseNotFound, Refused, send
from makegood.domain.actions import Actor, AgentNote, ApprovalDecision, CustomerAnswer, ExpenseClaim
from makegood.domain.money import Money
from tests.harness import AGENT, AUDITOR, CUSTOMER, MANAGER, Case, start, ticket


def claim(claim_id: str, amount: str, currency: str = "USD", by: Actor = CUSTOMER) -> ExpenseClaim:
    return ExpenseClaim(
        claim_id=claim_id, description="Taxi", amount=Money.of(amount, currency), by=by
    )


async def accepted_updates(case: Case) -> int:
    history = await case.handle.fetch_history()
    return sum(
        1
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    )


async def refused(case: Case, action: Any) -> str:
    before = await case.status()
    with pytest.raises(Refused) as err:
        await send(case.client, case.id, action)
    after = await case.status()
    assert after.model_dump() == before.model_dump(), "a refused action must change nothing"
    return str(err.value)


async def test_refusals_on_a_waiting_case_name_the_reason_and_change_nothing(
    env: WorkflowEnvironment, store: LocalStore, task_queue: str
) -> None:
    case = await start(env.client, store, ticket("s1-missing-car.json"), task_queue, env=env)
    await case.question("locate-CAR-1-1")
    accepted_before = await accepted_updates(case)
    messages_before = await case.messages()

    cases = [
        (
            ApprovalDecision(request_id="compensation", approved=True, by=AGENT),
            "approval decisions come from a manager or an ops lead, not an agent",
        ),
        (
            ApprovalDecision(request_id="compensation", approved=True, by=MANAGER),
            "nothing is waiting for approval",
        ),
        (
            CustomerAnswer(question_id="locate-CAR-1-1", answer="maybe", by=CUSTOMER),
            "answer must be one of found, not_found",
        ),
        (
            CustomerAnswer(question_id="pickup-1", answer="picked_up", by=CUSTOMER),
            "the open question is 'locate-CAR-1-1', not 'pickup-1'",
        ),
        (
            CustomerAnswer(question_id="locate-CAR-1-1", answer="found", by=AUDITOR),
            "answers come from the customer, an agent or a manager, not an auditor",
        ),
        (claim("taxi-1", "0.00"), "a claim must be for more than zero"),
        (claim("taxi-1", "12.00", "EUR"), "claim is in EUR but this case is in USD"),
        (
            claim("taxi-1", "250.00"),
            "250.00 USD is above the per-claim maximum of 200 USD: a manager must handle it",
        ),
        (
            claim("taxi-1", "12.00", by=AUDITOR),
            "expense claims come from the customer, an agent or a manager, not an auditor",
        ),
        (
            AgentNote(text="hello", by=CUSTOMER),
            "notes come from an agent or a manager, not a customer",
        ),
    ]
    for action, reason in cases:
        assert await refused(case, action) == reason

    assert await accepted_updates(case) == accepted_before
    assert await case.messages() == messages_before

    # The same case still takes sensible actions afterwards.
    await send(case.client, case.id, claim("taxi-1", "18.50"))
    assert await refused(case, claim("taxi-1", "18.50")) == "claim taxi-1 was already submitted"
    assert [c.claim_id for c in (await case.status()).claims] == ["taxi-1"]


async def test_negative_amounts_never_reach_a_case(
    env: WorkflowEnvironment, store: LocalStore, task_queue: str
) -> None:
    with pytest.raises(ValidationError, match="must not be negative"):
        claim("taxi-1", "-5.00")

    # A client that skips our models and sends the raw payload is refused by the case itself.
    case = await start(env.client, store, ticket("s1-missing-car.json"), task_queue, env=env)
    await case.question("locate-CAR-1-1")
    before = await case.status()
    raw = {
        "claim_id": "taxi-1",
        "description": "Taxi",
        "by": {"id": "M-42", "role": "customer"},
        "amount": {"amount": "-5.00", "currency": "USD"},
    }
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await case.handle.execute_update("submit_claim", raw)
    assert "Failed decoding arguments" in str(err.value.cause)
    assert (await case.status()).model_dump() == before.model_dump()


async def test_claims_close_once_compensation_is_decided(
    env: WorkflowEnvironment, store: LocalStore, task_queue: str
) -> None:
    case = await start(env.client, store, ticket("s1-missing-car.json"), task_queue, env=env)
    await case.answer("locate-CAR-1-1", "found")
    await case.until(lambda s: s.stage == "follow_up", "follow-up")
    assert await refused(case, claim("taxi-1", "10.00")) == (
        "expense claims are closed: the compensation has already been decided"
    )


async def test_actions_on_a_closed_case_are_refused(
    env: WorkflowEnvironment, store: LocalStore, task_queue: str
) -> None:
    case = await start(env.client, store, ticket("s5-wrong-drink.json"), task_queue, env=env)
    await case.result()
    history_before = len((await case.handle.fetch_history()).events)
    for action in (
        claim("receipt-1", "3.00"),
        AgentNote(text="late note", by=AGENT),
        CustomerAnswer(question_id="follow-up-1", answer="satisfied", by=CUSTOMER),
    ):
        with pytest.raises(Refused, match=rf"case {case.id} is closed \(completed\)"):
            await send(case.client, case.id, action)
    assert len((await case.handle.fetch_history()).events) == history_before


async def test_actions_on_an_unknown_case_say_so(env: WorkflowEnvironment) -> None:
    with pytest.raises(CaseNotFound, match="no case 'case-nope'"):
        await send(env.client, "case-nope", AgentNote(text="hello", by=AGENT))
