"""The conversation against the fakes: which channels are used, what happens when a message
cannot be delivered, and how waiting for the customer pauses the resolution clock."""

from __future__ import annotations

import pytest

from makegood.cases import Refused, send
from makegood.domain.actions import Actor, CustomerAnswer, ExpenseClaim
from makegood.domain.case import CaseStatus
from makegood.domain.money import Money
from tests.fakes import World
from tests.fast.driver import Runner, make_ticket

pytestmark = pytest.mark.fast


def reasons(status: CaseStatus) -> list[str]:
    return [e.reason for e in status.escalations]


def events(status: CaseStatus, kind: str) -> list[str]:
    return [e.detail for e in status.events if e.kind == kind]


async def test_a_channel_without_a_contact_is_skipped_and_recorded(run: Runner) -> None:
    case = await run.open(make_ticket("s1-missing-car.json", customer={"app_user_id": None}))
    for n in (1, 2):
        await case.answer(f"locate-CAR-1-{n}", "not_found")
    status = await case.question("pickup-1")

    # The playbook tells a new car by email and app; this member has no app account.
    assert [s for s in case.to_customer() if s and s.startswith("rebook:1")] == ["rebook:1:email"]
    assert events(status, "skipped_message") == ["no app contact for 'Your new car'"]
    assert not status.escalations


async def test_a_new_car_reaches_a_member_reachable_only_by_sms(run: Runner) -> None:
    t = make_ticket(
        "s1-missing-car.json",
        customer={"email": None, "app_user_id": None, "preferred_channel": "sms"},
    )
    case = await run.open(t)
    for n in (1, 2):
        await case.answer(f"locate-CAR-1-{n}", "not_found")
    await case.question("pickup-1")
    assert "rebook:1:sms" in case.to_customer()


async def test_an_undeliverable_message_escalates_and_the_case_goes_on(run: Runner) -> None:
    case = await run.open("s5-wrong-drink.json")
    case.fakes.on("send_message", step="ack:sms").fail_permanently("number does not exist")
    outcome = await case.result()
    status = await case.status()

    assert reasons(status) == ["could not reach the customer by sms: number does not exist"]
    assert case.to_ops() == ["escalation:1"]
    assert [c.outcome for c in case.fakes.called("send_message") if c.step == "ack:sms"] == [
        "failed"
    ]
    # The first contact that reached the customer is the confirmation, not the apology.
    assert case.to_customer() == ["confirm:sms"]
    assert events(status, "message") == ["sms: Confirmation: what we did"]
    assert status.first_contact_at is not None and outcome.first_contact_at is not None
    assert case.paid() == [("refund", "4.80 USD")] and outcome.resolution == "resolved"


async def test_a_message_retried_through_an_outage_is_sent_once(run: Runner) -> None:
    case = await run.open("s5-wrong-drink.json")
    case.fakes.on("send_message", step="ack:sms").fail(3, "SMS gateway busy")
    outcome = await case.result()
    ack = [c for c in case.fakes.called("send_message") if c.step == "ack:sms"]
    assert [(c.attempt, c.outcome) for c in ack] == [
        (1, "failed"),
        (2, "failed"),
        (3, "failed"),
        (4, "done"),
    ]
    assert case.to_customer() == ["ack:sms", "confirm:sms"]
    assert outcome.escalations == 0


async def test_ops_unreachable_is_recorded_and_does_not_stop_the_case(run: Runner) -> None:
    case = await run.open("s5-wrong-drink.json")
    case.fakes.on("remake_order").fail_permanently("espresso machine down")
    case.fakes.on("send_message", step="escalation:1").fail_permanently("ops mailbox full")
    outcome = await case.result()
    status = await case.status()
    assert reasons(status) == ["remake failed: espresso machine down"]
    assert events(status, "ops_unreachable") == ["ops mailbox full"]
    assert case.to_ops() == [] and outcome.resolution == "unresolved"


async def test_waiting_for_the_customer_pauses_the_resolution_clock(run: Runner) -> None:
    case = await run.open("s4-wrong-size.json")
    status = await case.question("substitute")
    (resolution,) = [c for c in status.slas if c.label == "resolution"]
    assert resolution.state == "paused"
    await case.answer("substitute", "refund")
    status = await case.approval("compensation")
    (resolution,) = [c for c in status.slas if c.label == "resolution"]
    assert resolution.state == "running"
    assert [c.label for c in status.slas if c.state == "met"] == ["first_contact", "remedy_offer"]


async def test_a_follow_up_nobody_answers_closes_with_a_note_to_the_customer(
    solo: Runner, world: World
) -> None:
    """On a server of its own: on the module's, time skipped for the days of the follow-up
    now and then stalls behind an earlier test's cases."""
    world.stock["SHORTS-BLUE-M"].quantity = 2  # shipped at once: nothing else is asked
    case = await solo.open("s4-wrong-size.json")
    outcome = await case.result()  # the follow-up and its reminder go unanswered
    assert outcome.resolution == "unreachable"
    told = case.to_customer()
    assert told[-1] == "closed-unanswered:email" and told.count("closed-unanswered:email") == 1
    (note,) = [e.request for e in case.effects("send_message") if e.step == told[-1]]
    assert note.subject == "We have closed your case"
    assert "did not hear back" in note.body and case.id in note.body


async def test_a_customer_answers_and_claims_on_their_own_case_alone(run: Runner) -> None:
    case = await run.open("s1-missing-car.json")  # M-42's case
    stranger = Actor(id="M-43", role="customer")
    await case.question("locate-CAR-1-1")
    with pytest.raises(Refused, match="a customer may act only on their own case"):
        await send(
            case.env.client,
            case.id,
            CustomerAnswer(question_id="locate-CAR-1-1", answer="found", by=stranger),
        )
    claim = ExpenseClaim(
        claim_id="taxi-1",
        description="Taxi",
        amount=Money.of("9.00", "USD"),
        by=stranger,
    )
    with pytest.raises(Refused, match="a customer may act only on their own case"):
        await send(case.env.client, case.id, claim)
    await case.answer("locate-CAR-1-1", "found")  # the case's own customer: taken
    status = await case.until(
        lambda s: s.question is None or s.question.id != "locate-CAR-1-1", "next"
    )
    assert [(e.detail, e.by) for e in status.events if e.kind == "answer"] == [
        ("locate-CAR-1-1: found", "customer:M-42")
    ]
    assert status.claims == []
