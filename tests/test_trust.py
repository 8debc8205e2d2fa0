"""Four eyes on money, and product actions only on what is the customer's (time-skipping server,
real local providers)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from temporalio.testing import WorkflowEnvironment

from makegood.adapters.local.store import LocalStore
from makegood.cases import Refused, send
from makegood.cli.render import render_status
from makegood.domain.actions import Actor, ApprovalDecision, AssignCase
from makegood.domain.playbook import PlaybookSet
from tests.harness import AGENT, MANAGER, Case, keys, playbooks, start, ticket

OTHER_MANAGER = Actor(id="max", role="manager")


def refund_needs_approval(*, four_eyes: bool = True) -> PlaybookSet:
    """S5's 4.80 USD refund above a 1.00 USD frontline limit: a manager must approve it."""
    book = playbooks()
    coffee = book.playbooks["wrong_order"]
    strict = coffee.model_copy(
        update={
            "discretion": coffee.discretion.model_copy(
                update={"floor": Decimal(0), "ceiling": Decimal(1)}
            ),
            "four_eyes": four_eyes,
        }
    )
    return book.model_copy(update={"playbooks": {**book.playbooks, "wrong_order": strict}})


async def decide(case: Case, by: Actor) -> None:
    await send(
        case.client, case.id, ApprovalDecision(request_id="compensation", approved=True, by=by)
    )


async def test_a_manager_cannot_approve_money_on_a_case_they_opened_or_own(
    env: WorkflowEnvironment, store: LocalStore, task_queue: str
) -> None:
    t = ticket("s5-wrong-drink.json")
    case = await start(
        env.client, store, t, task_queue, refund_needs_approval(), env=env, opened_by=MANAGER
    )
    await case.until(lambda s: s.approval is not None, "the approval")
    with pytest.raises(
        Refused,
        match=r"^manager:mia opened this case: money on a case needs a "
        r"second manager's approval \(four eyes\)$",
    ):
        await decide(case, MANAGER)
    await send(case.client, case.id, AssignCase(to=OTHER_MANAGER, by=AGENT))
    with pytest.raises(Refused, match=r"^manager:max owns this case"):
        await decide(case, OTHER_MANAGER)
    # A refused decision pays nothing more: only the 1.00 limit, paid at once on asking.
    assert [p["amount"] for p in await case.payments()] == ["1.00"]

    third = Actor(id="zoe", role="manager")
    await decide(case, third)
    outcome = await case.result()
    assert [(p["kind"], p["amount"]) for p in await case.payments()] == [
        ("refund", "1.00"),
        ("refund", "3.80"),
    ]
    assert outcome.approval_needed is True
    (record,) = (await case.status()).decisions
    assert (record.request_id, record.by, record.opened_by, record.approved) == (
        "compensation",
        "manager:zoe",
        "manager:mia",
        True,
    )
    assert str(record.amount) == "3.80 USD"  # what waited for the decision
    shown = render_status(await case.status())
    assert "compensation (3.80 USD) approved by manager:zoe; case opened by manager:mia" in shown


async def test_four_eyes_can_be_switched_off_per_playbook(
    env: WorkflowEnvironment, store: LocalStore, task_queue: str
) -> None:
    case = await start(
        env.client,
        store,
        ticket("s5-wrong-drink.json"),
        task_queue,
        refund_needs_approval(four_eyes=False),
        env=env,
        opened_by=MANAGER,
    )
    await case.until(lambda s: s.approval is not None, "the approval")
    await decide(case, MANAGER)
    await case.result()
    assert [p["amount"] for p in await case.payments()] == ["1.00", "3.80"]


async def test_a_booking_that_is_not_the_customers_is_never_touched_nor_paid_for(
    env: WorkflowEnvironment, store: LocalStore, task_queue: str
) -> None:
    t = ticket("s1-missing-car.json")  # R-1001 is M-42's booking, not M-99's
    t = t.model_copy(update={"customer": t.customer.model_copy(update={"id": "M-99"})})
    case = await start(env.client, store, t, task_queue, env=env)
    status = await case.until(lambda s: s.stage == "follow_up", "the follow-up")

    assert await case.actions() == [], "no horn, no re-booking, no release"
    assert await store.rows("SELECT status FROM bookings WHERE id = 'R-1001'") == [
        {"status": "active"}
    ]
    assert await case.payments() == []
    assert [e.kind for e in status.events if e.kind == "compensation_withheld"] == [
        "compensation_withheld"
    ]
    assert any(
        "booking R-1001 is not verified as the customer's" in e.reason for e in status.escalations
    )
    told = [m for m in await case.messages() if m["recipient"] == t.customer.email]
    assert keys(told) == ["ack:email", "ownership:email", "confirm:email"]
    assert "could not confirm that reservation R-1001 is registered to you" in told[1]["body"]
    assert "a colleague is checking that reservation R-1001" in told[2]["body"]


async def test_an_order_registered_to_another_customer_gets_no_remake_and_no_refund(
    env: WorkflowEnvironment, store: LocalStore, task_queue: str
) -> None:
    t = ticket("s5-wrong-drink.json")  # ORD-3001 is registered to C-88
    t = t.model_copy(update={"customer": t.customer.model_copy(update={"id": "C-99"})})
    case = await start(env.client, store, t, task_queue, env=env)
    outcome = await case.result()
    assert await case.actions() == [] and await case.payments() == []
    assert outcome.remedy_succeeded is False and outcome.paid_out.amount == 0


async def test_an_order_not_on_record_is_registered_to_whoever_reports_it_first(
    env: WorkflowEnvironment, store: LocalStore, task_queue: str
) -> None:
    # One case per time-skipping server: awaiting a result moves its clock far ahead.
    fresh = ticket("s5-wrong-drink.json")
    fresh = fresh.model_copy(
        update={
            "customer": fresh.customer.model_copy(update={"id": "C-100"}),
            "incident": fresh.incident.model_copy(update={"reference": "ORD-NEW-1"}),
        }
    )
    case = await start(env.client, store, fresh, task_queue, env=env)
    await case.result()
    assert [a["action"] for a in await case.actions()] == ["remake"]
    assert await store.rows("SELECT customer_id FROM registrations WHERE ref = 'ORD-NEW-1'") == [
        {"customer_id": "C-100"}
    ]
