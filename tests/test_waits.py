"""Every wait has a timeout with a defined escalation; follow-ups re-open unhappy cases."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from temporalio.testing import WorkflowEnvironment

from makegood.adapters.local.store import LocalStore
from makegood.domain.actions import Actor
from makegood.domain.case import CaseStatus
from tests.harness import Case, keys, playbooks, start, ticket

OPS = "ops@makegood.example.com"
OPS_LEAD = Actor(id="olga", role="ops_lead")


async def test_an_ignored_approval_climbs_its_chain_and_waits_for_a_person(
    env: WorkflowEnvironment, store: LocalStore, task_queue: str
) -> None:
    """Nobody decides: the approval goes from the manager to the ops lead, reminding each, and
    then keeps waiting (never declined by a timeout); the part within the limit was paid at
    once. Once the ops lead declines (with a note), time alone closes the case."""
    case = await start(env.client, store, ticket("s1-missing-car.json"), task_queue, env=env)
    await case.answer("locate-CAR-1-1", "not_found")
    await case.answer("locate-CAR-1-2", "not_found")
    await case.answer("pickup-1", "picked_up")
    await case.claim("taxi-1", "18.50")
    await case.answer("claims", "done")
    status = await case.until(lambda s: s.approval is not None, "approval")
    assert status.approval is not None and status.approval.id == "compensation"

    await case.skip(timedelta(hours=6, minutes=1))  # the whole chain: 2 h manager, 4 h ops lead
    status = await case.until(
        lambda s: any("whole chain" in e.reason for e in s.escalations), "past the chain"
    )
    assert [e.reason for e in status.escalations][-1] == (
        "approval compensation undecided after its whole chain: it stays with an ops lead, "
        "reminded every 2:00:00, until decided"
    )
    assert set(e.reason for e in status.escalations[:2]) == {
        "SLA breached: approval decided (approval:compensation) took longer than 2:00:00; "
        "escalated to a manager",
        "approval compensation undecided after 2:00:00; escalated to an ops lead (level 1)",
    }
    ops = keys([m for m in await case.messages() if m["recipient"] == OPS])
    assert ops[:2] == ["approval:compensation", "approval:compensation:level-0:reminder-1"]
    assert set(ops[2:5]) == {
        "sla:approval:compensation:warning",
        "sla:approval:compensation:breach",
        "approval:compensation:level-1",
    }
    assert ops[5:] == ["approval:compensation:level-1:reminder-1", "approval:compensation:overdue"]
    # Still pending, nothing declined; only the 21.00 within the limit is paid.
    assert status.approval is not None and status.approval.role == "ops_lead"
    assert [(i.step, i.state) for i in status.compensation] == [
        ("refund:within-limit", "paid"),
        ("refund", "pending"),
        ("reimburse:taxi-1", "pending"),
    ]
    assert [p["amount"] for p in await case.payments()] == ["21.00"]

    await case.approve("compensation", approved=False, by=OPS_LEAD, note="refund on file")
    outcome = await case.result()
    status = await case.status()
    assert [p["amount"] for p in await case.payments()] == ["21.00"]
    # The follow-up is asked, reminded once, then the case closes as unreachable, saying so.
    customer = keys([m for m in await case.messages() if m["recipient"] != OPS])
    assert "compensation-pending:compensation:email" in customer
    assert customer[-8:] == [
        "ask:follow-up-1:email",
        "ask:follow-up-1:reminder-1:email",
        "ask:follow-up-1:sms",  # the same question on another channel
        "callback:call-booked:email",  # then a call-back about it (the car playbook's choice)
        "callback:redial-1:sms",
        "callback:redial-2:sms",
        "callback:handed-off:sms",
        "closed-unanswered:email",
    ]
    assert outcome.resolution == "unreachable"
    assert outcome.paid_out.amount == Decimal("21.00") and outcome.escalations == 4
    assert (outcome.satisfaction, outcome.remedy) == ("unconfirmed", "succeeded")
    # 6 h of approval chain, 1 day to the follow-up, 2 days x 3 for its answer (two channels).
    assert outcome.seconds_to_close >= timedelta(hours=6, days=7).total_seconds()


async def _s4_until_follow_up(
    env: WorkflowEnvironment, store: LocalStore, task_queue: str, goodwill: str | None = None
) -> Case:
    book = playbooks()
    if goodwill is not None:
        wrong_item = book.playbooks["wrong_item"]
        changed = wrong_item.model_copy(
            update={
                "compensation": wrong_item.compensation.model_copy(
                    update={"reopen_goodwill": Decimal(goodwill)}
                )
            }
        )
        book = book.model_copy(update={"playbooks": {**book.playbooks, "wrong_item": changed}})
    case = await start(env.client, store, ticket("s4-wrong-size.json"), task_queue, book, env=env)
    await case.answer("substitute", "substitute", value="SHORTS-NAVY-M")
    await case.until(lambda s: s.stage == "follow_up", "follow-up")
    await case.skip(timedelta(days=3))
    return case


def _coupons(status: CaseStatus) -> list[tuple[str, str]]:
    return [(i.step, i.state) for i in status.compensation if i.kind == "coupon"]


async def test_unhappy_customer_reopens_with_goodwill_within_discretion(
    env: WorkflowEnvironment, store: LocalStore, task_queue: str
) -> None:
    case = await _s4_until_follow_up(env, store, task_queue)
    await case.answer("follow-up-1", "not_satisfied", comment="the navy ones fade")
    await case.until(lambda s: s.stage == "follow_up", "second follow-up")
    await case.skip(timedelta(days=3))
    await case.answer("follow-up-2", "satisfied")
    outcome = await case.result()
    status = await case.status()

    # 7.00 waived + 10.00 coupon + 10.00 goodwill = 27.00: exactly the frontline's limit.
    assert str(status.discretion_limit) == "27.00 USD"
    assert _coupons(status) == [("coupon", "paid"), ("coupon:reopen-1", "paid")]
    assert outcome.approval_needed is False and not status.escalations
    assert sorted(p["amount"] for p in await case.payments()) == ["10.00", "10.00"]
    assert keys(await case.messages()) == [
        "ack:email",
        "ask:substitute:email",
        "confirm:email",
        "ask:follow-up-1:email",
        "confirm:2:email",
        "ask:follow-up-2:email",
    ]
    second = (await case.messages())[4]["body"]
    assert "10.00 USD" in second
    assert outcome.resolution == "resolved" and outcome.reopened == 1
    assert outcome.goodwill.amount == Decimal("27.00")


async def test_goodwill_beyond_discretion_on_reopen_needs_a_manager(
    env: WorkflowEnvironment, store: LocalStore, task_queue: str
) -> None:
    case = await _s4_until_follow_up(env, store, task_queue, goodwill="11")
    await case.answer("follow-up-1", "not_satisfied")
    status = await case.until(lambda s: s.approval is not None, "reopen approval")
    assert status.approval is not None and status.approval.id == "reopen-1"
    assert status.approval.reason == (
        "compensation of 11.00 USD on top of 17.00 USD already "
        "granted is above the frontline limit of 27.00 USD"
    )
    await case.approve("reopen-1", approved=False)
    await case.until(lambda s: s.stage == "follow_up", "second follow-up")
    await case.skip(timedelta(days=3))
    await case.answer("follow-up-2", "not_satisfied", comment="still unhappy")
    outcome = await case.result()
    status = await case.status()

    assert _coupons(status) == [("coupon", "paid"), ("coupon:reopen-1", "declined")]
    assert [p["amount"] for p in await case.payments()] == ["10.00"]
    # One re-open is all the playbook allows: the second "no" goes to a person.
    assert [e.reason for e in status.escalations] == [
        "customer still not satisfied after 2 follow-ups: still unhappy"
    ]
    assert outcome.resolution == "unresolved" and outcome.approval_needed


async def test_declined_rebooking_releases_every_unused_booking_newest_first(
    env: WorkflowEnvironment, store: LocalStore, task_queue: str
) -> None:
    case = await start(env.client, store, ticket("s1-missing-car.json"), task_queue, env=env)
    await case.answer("locate-CAR-1-1", "not_found")
    await case.answer("locate-CAR-1-2", "not_found")
    await case.claim("taxi-1", "18.50")
    await case.answer("pickup-1", "missing")
    await case.answer("locate-CAR-2-1", "not_found")
    await case.answer("locate-CAR-2-2", "not_found")
    await case.approve("rebook-2", approved=False)
    status = await case.question("claims")

    second = status.bookings[1].id
    assert [(b.id, b.status) for b in status.bookings] == [
        ("R-1001", "released"),
        (second, "released"),
    ]
    assert [a["target"] for a in await case.actions("release")] == [second, "R-1001"]
    assert await store.rows(
        "SELECT status FROM bookings WHERE id IN ('R-1001', ?) ORDER BY created_at", second
    ) == [{"status": "released"}, {"status": "released"}]
    assert [e.reason for e in status.escalations] == [
        "re-booking 2 not approved: a person must take over"
    ]
    # The member is still made whole for what the failure cost them.
    await case.answer("claims", "done")
    await case.approve("compensation")
    await case.until(lambda s: s.stage == "follow_up", "follow-up")
    assert sorted(p["amount"] for p in await case.payments()) == ["18.50", "21.00", "21.00"]
