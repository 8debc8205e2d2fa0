"""The car-sharing remedy's decisions against the fakes: horn, re-booking, approvals,
releases, and what the member is told and asked."""

from __future__ import annotations

from datetime import timedelta

import pytest

from makegood.domain.case import CaseStatus
from tests.fakes import World
from tests.fast.driver import Case, Runner, book

pytestmark = pytest.mark.fast


def reasons(status: CaseStatus) -> list[str]:
    return [e.reason for e in status.escalations]


def events(status: CaseStatus, kind: str) -> list[str]:
    return [e.detail for e in status.events if e.kind == kind]


# ------------------------------------------------------------------ rebook (car sharing)
async def test_rebook_car_found_on_the_first_horn(solo: Runner) -> None:
    case = await solo.open("s1-missing-car.json")
    await case.answer("locate-CAR-1-1", "found")
    status = await case.until(lambda s: s.stage == "follow_up", "follow-up")

    assert case.steps("locate_vehicle") == ["locate:CAR-1:1"]
    assert case.steps("rebook_vehicle") == [] and case.steps("release_booking") == []
    assert [(b.id, b.status) for b in status.bookings] == [("R-1001", "in_use")]
    # Nothing failed the member a second time: no refund, no claims invited, nothing to pay.
    assert status.compensation == [] and case.paid() == []
    assert case.to_customer() == ["ack:email", "ask:locate-CAR-1-1:email", "confirm:email"]
    await case.skip(timedelta(days=1))
    await case.answer("follow-up-1", "satisfied")
    outcome = await case.result()
    assert (outcome.resolution, outcome.remedy_attempts, outcome.remedy_succeeded) == (
        "resolved",
        0,
        True,
    )
    assert outcome.escalations == 0 and not outcome.approval_needed


async def _not_found(case: Case, vehicle: str, attempts: int = 2) -> None:
    for n in range(1, attempts + 1):
        await case.answer(f"locate-{vehicle}-{n}", "not_found")


async def test_rebook_exhausted_hands_over_and_releases_every_booking_newest_first(
    run: Runner, world: World
) -> None:
    case = await run.open(
        "s1-missing-car.json", book("car_missing", remedy_attempts=2, locate_attempts=1)
    )
    await _not_found(case, "CAR-1", 1)
    await case.answer("pickup-1", "missing")
    await _not_found(case, "CAR-2", 1)
    await case.approve("rebook-2")
    await case.answer("pickup-2", "missing")
    await _not_found(case, "CAR-3", 1)
    status = await case.question("claims")

    rebooks = case.effects("rebook_vehicle")
    assert [e.step for e in rebooks] == ["rebook:1", "rebook:2"]
    # Never the same car twice; the manager-approved re-booking goes one class up.
    assert [(e.request.exclude, e.request.upgrade) for e in rebooks] == [
        (["CAR-1"], False),
        (["CAR-1", "CAR-2"], True),
    ]
    assert [e.result.vehicle for e in rebooks] == ["CAR-2", "CAR-3"]
    assert case.steps("release_booking") == ["release:bk-2", "release:bk-1", "release:R-1001"]
    assert [(b.id, b.status) for b in status.bookings] == [
        ("R-1001", "released"),
        ("bk-1", "released"),
        ("bk-2", "released"),
    ]
    assert {b: s for b, (_, s) in world.bookings.items()} == {
        "R-1001": "released",
        "bk-1": "released",
        "bk-2": "released",
    }
    assert reasons(status) == ["no car after 2 re-booking(s): a person must take over"]
    assert case.steps("locate_vehicle") == ["locate:CAR-1:1", "locate:CAR-2:1", "locate:CAR-3:1"]
    # The member hears who has the case now and by when, before being asked for receipts.
    told = case.to_customer()
    assert told.index("handed-over:email") == told.index("ask:claims:email") - 1
    (handed,) = [e.request for e in case.effects("send_message") if e.step == "handed-over:email"]
    assert "a member of our operations team now takes care of case" in handed.body
    assert "within 2 hours" in handed.body

    await case.answer("claims", "done")
    await case.approve("compensation")  # the 42.00 refund is above the 21.00 limit
    await case.until(lambda s: s.stage == "follow_up", "follow-up")
    assert case.paid() == [("refund:within-limit", "21.00 USD"), ("refund", "21.00 USD")]


async def test_rebook_approval_declined_releases_newest_first_and_rebooks_no_more(
    run: Runner, world: World
) -> None:
    case = await run.open("s1-missing-car.json", book("car_missing", locate_attempts=1))
    await _not_found(case, "CAR-1", 1)
    await case.answer("pickup-1", "missing")
    await _not_found(case, "CAR-2", 1)
    waiting = await case.approval("rebook-2")
    assert waiting.stage == "remedy"  # the manager's decision is part of the remedy
    await case.approve("rebook-2", approved=False)
    status = await case.question("claims")

    assert case.steps("rebook_vehicle") == ["rebook:1"]
    assert case.steps("release_booking") == ["release:bk-1", "release:R-1001"]
    assert reasons(status) == ["re-booking 2 not approved: a person must take over"]
    assert world.vehicles["CAR-2"].available and world.vehicles["CAR-1"].available


async def test_no_answer_at_pickup_is_not_recorded_as_the_remedy_working(solo: Runner) -> None:
    case = await solo.open("s1-missing-car.json", book("car_missing", on_silence="escalate"))
    await _not_found(case, "CAR-1")
    await case.question("pickup-1")
    await case.skip(timedelta(minutes=31))  # silent by email: asked again by sms
    await case.eventually(lambda: "ask:pickup-1:sms" in case.to_customer(), "asked by sms")
    await case.until(
        lambda s: any((e.kind, e.detail[:4]) == ("message", "sms:") for e in s.events[-3:]),
        "sms sent",
    )
    await case.skip(timedelta(minutes=31))
    status = await case.question("claims")
    assert [r for r in reasons(status) if r.startswith("no answer")] == [
        "no answer to pickup-1 ('Did you find CAR-2 at Main St 1?'), asked by email and sms: "
        "nothing is assumed; CAR-2 stays booked for the member, not counted as fixed; a person "
        "must ask the customer"
    ]
    # Kept for the member (never released under them), the original one released.
    assert [(b.vehicle, b.status) for b in status.bookings] == [
        ("CAR-1", "released"),
        ("CAR-2", "unconfirmed"),
    ]
    # The refund above the limit waits for a person (never declined by a timeout).
    await case.answer("claims", "done")
    await case.approve("compensation")
    outcome = await case.result()
    assert outcome.remedy_succeeded is False and outcome.remedy == "unconfirmed"


async def test_a_horn_that_did_not_sound_is_not_confirmed_as_sounded(
    run: Runner, world: World
) -> None:
    world.silent_horns.add("CAR-1")
    case = await run.open("s1-missing-car.json")
    await case.answer("locate-CAR-1-1", "found")
    await case.until(lambda s: s.stage == "follow_up", "follow-up")
    (located,) = case.effects("locate_vehicle")
    assert located.result.honked is False
    (confirmation,) = [e.request for e in case.effects("send_message") if e.step == "confirm:email"]
    assert "sounded the horn of CAR-1" not in confirmation.body
    (asked,) = [e.request for e in case.effects("send_message") if e.step.startswith("ask:locate")]
    assert "did not answer when we tried to sound its horn" in asked.body


async def test_a_failed_rebooking_escalates_with_the_providers_reason(
    run: Runner, world: World
) -> None:
    for car in ("CAR-2", "CAR-4"):  # no other compact car free anywhere
        world.vehicles[car].available = False
    case = await run.open("s1-missing-car.json")
    await _not_found(case, "CAR-1")
    status = await case.approval("compensation")  # a refund: the member was failed again
    assert reasons(status) == [
        "re-booking failed: no vehicle of class compact available near Main St 1"
    ]
    assert case.steps("rebook_vehicle") == [] and case.steps("release_booking") == [
        "release:R-1001"
    ]
    # Refused for good: asked once, not retried.
    assert [c.outcome for c in case.fakes.called("rebook_vehicle")] == ["failed"]
