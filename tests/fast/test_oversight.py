"""Oversight against the fakes: approvals escalating along their chain of roles (the part
within the limit paid at once, the rest pending until a person decides), SLA warnings and
breaches on the simulated clock, and operators cancelling a case mid-remedy."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from functools import partial
from typing import Any

import pytest

from makegood.cases import Refused, send
from makegood.cli.render import render_status
from makegood.domain.actions import Actor, ApprovalDecision
from makegood.domain.case import CaseStatus, SlaClock
from makegood.domain.playbook import PlaybookSet
from makegood.domain.provider import MessageRequest
from makegood.domain.ticket import Ticket
from makegood.domain.wording import hhmm
from tests.fakes import World
from tests.fast.driver import Case, Runner, book, make_ticket
from tests.harness import MANAGER

OPS_LEAD = Actor(id="olga", role="ops_lead")

pytestmark = pytest.mark.fast


def reasons(status: CaseStatus) -> list[str]:
    return [e.reason for e in status.escalations]


def clock(status: CaseStatus, label: str) -> SlaClock:
    return next(c for c in status.slas if c.label == label)


# ------------------------------------------------------------------ approvals
def at_level(status: CaseStatus, level: int) -> bool:
    return status.approval is not None and status.approval.level == level


def s5_above_limit() -> tuple[Ticket, PlaybookSet]:
    """A 30.00 wrong order: the refund is above the 25.00 cap, so a manager must approve it.
    The approval and resolution SLA clocks are off here, so only the approval's escalations
    speak."""
    return (
        make_ticket("s5-wrong-drink.json", incident={"paid": {"amount": "30.00"}}),
        book("wrong_order", sla={"approval_decision": None, "resolution": None}),
    )


async def test_an_undecided_approval_escalates_level_by_level_and_never_declines_by_itself(
    solo: Runner,
) -> None:
    """A playbook without a chain (wrong_order): three 15-minute levels of managers, as the
    older fields say; after the last one it keeps waiting, reminding, and pays nothing more."""
    case = await solo.open(*s5_above_limit())
    first = (await case.approval("compensation")).approval
    assert first is not None and first.level == 0 and first.role == "manager"
    assert first.deadline - first.asked_at == timedelta(minutes=15)
    assert first.decide_by is not None and first.decide_by - first.asked_at == timedelta(minutes=45)
    # The 25.00 within the limit is paid at once; the 5.00 above it waits.
    await case.eventually(lambda: case.paid() == [("refund:within-limit", "25.00 USD")], "paid")

    for level in (1, 2):
        await case.skip(timedelta(minutes=15))
        status = await case.until(partial(at_level, level=level), f"level {level}")
        assert status.approval is not None
        due = status.approval.deadline - first.asked_at
        assert abs(due - timedelta(minutes=15 * (level + 1))) < timedelta(seconds=1)
        ops = await case.sent_to_ops(f"approval:compensation:level-{level}")
        assert ops[-1] == f"approval:compensation:level-{level}"

    await case.skip(timedelta(minutes=15))
    await case.sent_to_ops("approval:compensation:overdue")
    await case.skip(timedelta(minutes=31))  # the last level's interval, twice
    await case.sent_to_ops("approval:compensation:level-2:reminder-2")
    status = await case.status()
    assert case.to_ops() == [
        "approval:compensation",
        "approval:compensation:level-1",
        "approval:compensation:level-2",
        "approval:compensation:overdue",
        "approval:compensation:level-2:reminder-1",
        "approval:compensation:level-2:reminder-2",
    ]
    assert reasons(status) == [
        "approval compensation undecided after 0:15:00; escalated to a manager (level 1)",
        "approval compensation undecided after 0:15:00; escalated to a manager (level 2)",
        "approval compensation undecided after its whole chain: it stays with a manager, "
        "reminded every 0:15:00, until decided",
    ]
    # Never declined by a timeout: the rest is still pending, visible in the status.
    assert status.approval is not None and str(status.approval.amount) == "5.00 USD"
    assert [(i.step, i.state, str(i.amount)) for i in status.compensation] == [
        ("refund:within-limit", "paid", "25.00 USD"),
        ("refund", "pending", "5.00 USD"),
    ]
    assert case.paid() == [("refund:within-limit", "25.00 USD")]
    assert status.stage == "compensate"


async def test_an_approval_decided_after_an_escalation_still_pays(solo: Runner) -> None:
    case = await solo.open(*s5_above_limit())
    await case.approval("compensation")
    await case.skip(timedelta(minutes=15))
    await case.until(lambda s: s.approval is not None and s.approval.level == 1, "level 1")
    await case.approve("compensation")
    outcome = await case.result()
    assert case.paid() == [("refund:within-limit", "25.00 USD"), ("refund", "5.00 USD")]
    assert case.to_ops() == ["approval:compensation", "approval:compensation:level-1"]
    assert outcome.escalations == 1


def s5_chain(**changes: Any) -> tuple[Ticket, PlaybookSet]:
    """The 30.00 wrong order with a chain: a manager for an hour (reminded after 30 min),
    then the ops lead for two hours (reminded after one)."""
    chain = [
        {"role": "manager", "wait": "PT1H", "reminders": 1},
        {"role": "ops_lead", "wait": "PT2H", "reminders": 1},
    ]
    ticket, _ = s5_above_limit()
    sla = {"approval_decision": None, "resolution": None}
    return ticket, book("wrong_order", sla=sla, approval_chain=chain, **changes)


def message(case: Case, step: str) -> str:
    (body,) = [e.request.body for e in case.effects("send_message") if e.step == step]
    return str(body)


def ops_message(case: Case, step: str) -> MessageRequest:
    (request,) = [e.request for e in case.effects("send_message") if e.step == step]
    assert isinstance(request, MessageRequest)
    return request


async def decide(case: Case, approved: bool, by: Actor, note: str | None = None) -> None:
    decision = ApprovalDecision(request_id="compensation", approved=approved, note=note, by=by)
    await send(case.env.client, case.id, decision)


async def test_the_chain_goes_from_a_manager_to_the_ops_lead_and_a_late_approval_pays_the_rest(
    solo: Runner,
) -> None:
    case = await solo.open(*s5_chain())
    status = await case.approval("compensation")
    asked = status.approval
    assert asked is not None and (asked.role, asked.then) == ("manager", "escalated to an ops lead")
    assert asked.decide_by == asked.asked_at + timedelta(hours=3)
    assert str(asked.amount) == "5.00 USD" and str(asked.paid_meanwhile) == "25.00 USD"

    # The part within the frontline limit is paid at once, and the customer told the rest.
    await case.eventually(
        lambda: "compensation-pending:compensation:sms" in case.to_customer(), "told"
    )
    assert case.paid() == [("refund:within-limit", "25.00 USD")]
    told = message(case, "compensation-pending:compensation:sms")
    assert "- refund of what you paid (paid at once): 25.00 USD" in told
    assert (
        f"The rest, 5.00 USD, needs a manager's approval, due by {hhmm(asked.decide_by)} UTC"
        in told
    )
    assert "- refund of what you paid (the rest): 5.00 USD" in told

    await case.skip(timedelta(minutes=31))  # the manager's reminder
    await case.sent_to_ops("approval:compensation:level-0:reminder-1")
    await case.skip(timedelta(minutes=30))  # the manager's hour is up: the ops lead has it
    status = await case.until(partial(at_level, level=1), "the ops lead's level")
    assert status.approval is not None and status.approval.role == "ops_lead"
    assert status.approval.then == "reminders to an ops lead until decided"
    assert reasons(status) == [
        "approval compensation undecided after 1:00:00; escalated to an ops lead (level 1)"
    ]
    assert "escalated to an ops lead" in ops_message(case, "approval:compensation:level-1").body
    # Escalated: a manager may no longer decide; the pending part shows in the status.
    with pytest.raises(Refused, match="escalated to an ops lead: it is theirs to decide"):
        await decide(case, True, MANAGER)
    assert [(i.step, i.state) for i in status.compensation] == [
        ("refund:within-limit", "paid"),
        ("refund", "pending"),
    ]
    shown = render_status(status)
    assert "WAITING FOR AN OPS LEAD: compensation (5.00 USD pending)" in shown
    assert "paid at once within the frontline limit: 25.00 USD" in shown
    assert "then reminders to an ops lead until decided" in shown

    await case.skip(timedelta(minutes=61))
    await case.sent_to_ops("approval:compensation:level-1:reminder-1")
    reminder = ops_message(case, "approval:compensation:level-1:reminder-1")
    assert reminder.subject == f"Reminder: approval by an ops lead: {case.id}"
    assert "For an ops lead (or above) to decide by" in reminder.body
    await decide(case, True, OPS_LEAD)
    outcome = await case.result()
    # The rest is paid once the ops lead approves, and each part exactly once.
    assert case.paid() == [("refund:within-limit", "25.00 USD"), ("refund", "5.00 USD")]
    assert [c.key for c in case.fakes.called("make_payment")] == [
        f"{case.id}:refund:within-limit",
        f"{case.id}:refund",
    ]
    status = await case.status()
    assert status.approval is None and status.decisions[-1].by == "ops_lead:olga"
    assert "In all we paid or credited you 30.00 USD" in message(case, "confirm:sms")
    assert case.to_ops() == [
        "approval:compensation",
        "approval:compensation:level-0:reminder-1",
        "approval:compensation:level-1",
        "approval:compensation:level-1:reminder-1",
    ]
    assert str(outcome.paid_out) == "30.00 USD"


async def test_a_decline_needs_a_note_and_the_customer_is_told_it(run: Runner) -> None:
    case = await run.open(*s5_chain())
    await case.approval("compensation")
    with pytest.raises(Refused, match="declining compensation needs a note saying why"):
        await decide(case, False, MANAGER)
    assert (await case.status()).approval is not None  # nothing changed
    await decide(case, False, MANAGER, note="the drink was remade at once")
    await case.result()
    status = await case.status()
    assert [(i.step, i.state) for i in status.compensation] == [
        ("refund:within-limit", "paid"),
        ("refund", "declined"),
    ]
    assert case.paid() == [("refund:within-limit", "25.00 USD")]
    confirmation = message(case, "confirm:sms")
    declined = confirmation.split("did not grant it:")[1]
    assert (
        "- refund of what you paid (the rest): 5.00 USD (why: the drink was remade at once)"
        in declined
    )
    assert "In all we paid or credited you 25.00 USD" in confirmation
    assert status.decisions[-1].amount is not None and str(status.decisions[-1].amount) == (
        "5.00 USD"
    )


async def test_the_playbook_may_decline_after_the_last_level(run: Runner) -> None:
    case = await run.open(*s5_chain(on_no_decision="decline"))
    outcome = await case.result()  # the server skips the three hours
    status = await case.status()
    assert reasons(status) == [
        "approval compensation undecided after 1:00:00; escalated to an ops lead (level 1)",
        "approval compensation undecided after its whole chain: declined, as the playbook "
        "says (on_no_decision = decline)",
    ]
    assert case.to_ops()[-1] == "approval:compensation:expired"
    assert [(i.step, i.state) for i in status.compensation] == [
        ("refund:within-limit", "paid"),
        ("refund", "declined"),
    ]
    declined = message(case, "confirm:sms").split("did not grant it:")[1]
    assert "(why: nobody decided it within 3:00:00, and our rules then decline it)" in declined
    assert case.paid() == [("refund:within-limit", "25.00 USD")] and outcome.approval_needed


# ------------------------------------------------------------------ SLA clocks
async def test_sla_warns_at_80_percent_and_escalates_at_the_target(solo: Runner) -> None:
    case = await solo.open(
        "s1-missing-car.json", book("car_missing", sla={"remedy_offer": "PT20M"})
    )
    status = await case.question("locate-CAR-1-1")
    assert clock(status, "first_contact").state == "met"
    started = clock(status, "remedy_offer").started_at

    await case.skip(timedelta(minutes=15))
    assert clock(await case.status(), "remedy_offer").level == "ok"
    await case.skip(timedelta(minutes=2))  # 17 min: past 16
    status = await case.until(lambda s: clock(s, "remedy_offer").level == "warning", "warning")
    warned = clock(status, "remedy_offer").warned_at
    assert warned is not None and abs(warned - started - timedelta(minutes=16)) < timedelta(
        seconds=1
    )
    # Nobody owns the case: the warning goes to ops.
    assert await case.sent_to_ops("sla:remedy_offer:warning") == ["sla:remedy_offer:warning"]
    assert not status.escalations

    await case.skip(timedelta(minutes=4))  # 21 min
    status = await case.until(lambda s: clock(s, "remedy_offer").level == "breached", "breach")
    breached = clock(status, "remedy_offer").breached_at
    assert breached is not None
    assert abs(breached - started - timedelta(minutes=20)) < timedelta(seconds=1)
    assert reasons(status) == [
        "SLA breached: remedy offered took longer than 0:20:00; escalated to a manager"
    ]
    assert await case.sent_to_ops("sla:remedy_offer:breach") == [
        "sla:remedy_offer:warning",
        "sla:remedy_offer:breach",
    ]
    # The customer's wait for an answer is untouched by the alarms.
    assert status.question is not None and status.question.id == "locate-CAR-1-1"
    # The outcome record names the breach, for the trends.
    await case.cancel()
    outcome = await case.result()
    assert outcome.resolution == "cancelled" and outcome.sla_breaches == ["remedy_offer"]


async def test_a_clock_stopped_in_time_never_alarms(run: Runner) -> None:
    case = await run.open("s5-wrong-drink.json")
    outcome = await case.result()
    status = await case.status()
    assert {c.label: c.state for c in status.slas} == {
        "first_contact": "met",
        "remedy_offer": "met",
        "resolution": "met",
    }
    assert case.to_ops() == [] and outcome.escalations == 0


# ------------------------------------------------------------------ cancellation
async def _rebooked(case: Case) -> None:
    for n in (1, 2):
        await case.answer(f"locate-CAR-1-{n}", "not_found")
    await case.question("pickup-1")


async def test_cancel_mid_remedy_releases_newest_first_and_keeps_the_attempts(
    run: Runner, world: World
) -> None:
    case = await run.open("s1-missing-car.json")
    await _rebooked(case)
    await case.cancel("member found their own way")
    outcome = await case.result()
    status = await case.status()

    assert case.steps("release_booking") == ["release:bk-1", "release:R-1001"]
    assert [(b.id, b.status) for b in status.bookings] == [
        ("R-1001", "released"),
        ("bk-1", "released"),
    ]
    assert world.vehicles["CAR-2"].available and world.vehicles["CAR-1"].available
    assert case.to_customer()[-1] == "cancelled:email"
    assert "confirm:email" not in case.to_customer() and case.paid() == []
    assert status.cancelled == "member found their own way (by agent:sam)"
    assert status.question is None and status.approval is None
    assert all(c.stopped_at is not None for c in status.slas)
    assert (outcome.resolution, outcome.remedy_attempts, outcome.remedy_succeeded) == (
        "cancelled",
        1,
        False,
    )
    assert world.outcomes[case.id] == outcome


async def test_a_cancelled_case_tells_what_stays_paid_and_what_will_not_be(run: Runner) -> None:
    case = await run.open("s1-missing-car.json")
    await _rebooked(case)
    await case.claim("taxi-1", "12.00", "Taxi to the other car")
    await case.cancel("member withdrew the complaint")
    await case.result()
    (message,) = [e.request for e in case.effects("send_message") if e.step == "cancelled:email"]
    assert "we have closed case" in message.body and "member withdrew the complaint" in message.body
    unpaid = message.body.split("Not paid, because the case is closed:")[1]
    assert "- reimbursement: Taxi to the other car: 12.00 USD" in unpaid
    assert "Already paid" not in message.body and case.paid() == []


async def test_cancel_while_a_manager_decides_clears_the_approval(run: Runner) -> None:
    case = await run.open("s1-missing-car.json", book("car_missing", locate_attempts=1))
    await case.answer("locate-CAR-1-1", "not_found")
    await case.answer("pickup-1", "missing")
    await case.answer("locate-CAR-2-1", "not_found")
    await case.approval("rebook-2")
    await case.cancel()
    outcome = await case.result()
    status = await case.status()
    assert case.steps("rebook_vehicle") == ["rebook:1"]
    assert case.steps("release_booking") == ["release:bk-1", "release:R-1001"]
    assert status.approval is None and outcome.remedy_attempts == 1
    assert outcome.resolution == "cancelled"


async def test_a_cancel_while_a_rebooking_is_in_flight_winds_the_case_down(
    run: Runner, world: World
) -> None:
    case = await run.open("s1-missing-car.json")
    held = case.fakes.on("rebook_vehicle", step="rebook:1").hold()
    for n in (1, 2):
        await case.answer(f"locate-CAR-1-{n}", "not_found")
    await asyncio.wait_for(held.entered.wait(), 5)
    await case.cancel()
    held.release()
    outcome = await case.result()
    status = await case.status()
    assert case.steps("rebook_vehicle") == ["rebook:1"]  # the provider did book CAR-2
    assert "re-booking failed: Cancelled" not in reasons(status)
    assert outcome.resolution == "cancelled"
    assert {b: s for b, (_, s) in world.bookings.items()} == {
        "R-1001": "released",
        "bk-1": "released",
    }


async def test_a_cancel_while_a_message_is_in_flight_winds_the_case_down(run: Runner) -> None:
    case = await run.open("s1-missing-car.json")
    held = case.fakes.on("send_message", step="ask:locate-CAR-1-1:email").hold()
    await asyncio.wait_for(held.entered.wait(), 5)
    await case.cancel()
    held.release()
    outcome = await case.result()
    status = await case.status()
    assert not any("Cancelled" in r for r in reasons(status)), reasons(status)
    assert outcome.resolution == "cancelled"
