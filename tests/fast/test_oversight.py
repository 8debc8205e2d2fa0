"""Oversight against the fakes: approvals escalating level by level, SLA warnings and
breaches on the simulated clock, and operators cancelling a case mid-remedy."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from functools import partial

import pytest

from makegood.domain.case import CaseStatus, SlaClock
from makegood.domain.playbook import PlaybookSet
from makegood.domain.ticket import Ticket
from tests.fakes import World
from tests.fast.driver import Case, Runner, book, make_ticket

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


async def test_an_undecided_approval_escalates_level_by_level_then_declines(
    solo: Runner,
) -> None:
    case = await solo.open(*s5_above_limit())
    first = (await case.approval("compensation")).approval
    assert first is not None and first.level == 0
    assert first.deadline - first.asked_at == timedelta(minutes=15)

    for level in (1, 2):
        await case.skip(timedelta(minutes=15))
        status = await case.until(partial(at_level, level=level), f"level {level}")
        assert status.approval is not None
        due = status.approval.deadline - first.asked_at
        assert abs(due - timedelta(minutes=15 * (level + 1))) < timedelta(seconds=1)
        ops = await case.sent_to_ops(f"approval:compensation:level-{level}")
        assert ops[-1] == f"approval:compensation:level-{level}"
        assert case.paid() == []

    outcome = await case.result()
    status = await case.status()
    assert case.to_ops() == [
        "approval:compensation",
        "approval:compensation:level-1",
        "approval:compensation:level-2",
        "approval:compensation:expired",
    ]
    assert reasons(status) == [
        "approval compensation undecided after 0:15:00; escalated to level 1",
        "approval compensation undecided after 0:15:00; escalated to level 2",
        "approval compensation never decided: treated as declined",
    ]
    # Never decided counts as declined: the refund does not fit the limit, nothing is paid.
    assert [(i.step, i.state) for i in status.compensation] == [("refund", "declined")]
    assert case.paid() == [] and outcome.approval_needed


async def test_an_approval_decided_after_an_escalation_still_pays(solo: Runner) -> None:
    case = await solo.open(*s5_above_limit())
    await case.approval("compensation")
    await case.skip(timedelta(minutes=15))
    await case.until(lambda s: s.approval is not None and s.approval.level == 1, "level 1")
    await case.approve("compensation")
    outcome = await case.result()
    assert case.paid() == [("refund", "30.00 USD")]
    assert case.to_ops() == ["approval:compensation", "approval:compensation:level-1"]
    assert outcome.escalations == 1


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
