"""Settlement against the fakes: the discretion limit, approvals (the part within the limit
paid at once, the rest once approved), what a declined approval still pays, failed and
retried payments (each paid exactly once), and re-opened cases."""

from __future__ import annotations

from datetime import timedelta

import pytest

from makegood.cases import Refused
from makegood.domain.case import CaseStatus
from makegood.domain.money import Money
from makegood.domain.ticket import Ticket
from tests.fast.driver import Case, Runner, book, make_ticket

pytestmark = pytest.mark.fast


def reasons(status: CaseStatus) -> list[str]:
    return [e.reason for e in status.escalations]


def states(status: CaseStatus) -> list[tuple[str, str]]:
    return [(i.step, i.state) for i in status.compensation]


def s5(paid: str = "4.80") -> Ticket:
    return make_ticket("s5-wrong-drink.json", incident={"paid": {"amount": paid}})


async def test_within_discretion_pays_at_once_without_asking(run: Runner) -> None:
    case = await run.open("s5-wrong-drink.json")
    outcome = await case.result()
    status = await case.status()

    assert str(status.discretion_limit) == "10.00 USD"
    assert [e.detail for e in status.events if e.kind == "within_discretion"] == [
        "4.80 USD within the frontline limit of 10.00 USD"
    ]
    assert case.paid() == [("refund", "4.80 USD")]
    assert states(status) == [("refund", "paid")]
    assert status.compensation[0].receipt == case.effects("make_payment")[0].result.payment_id
    assert not outcome.approval_needed and str(outcome.paid_out) == "4.80 USD"
    assert case.to_ops() == []


@pytest.mark.parametrize(("paid", "asks"), [("25.00", False), ("25.01", True)])
async def test_the_limit_itself_is_within_discretion(run: Runner, paid: str, asks: bool) -> None:
    case = await run.open(s5(paid))  # the limit: 1 x paid, capped at 25.00
    status = await case.until(
        lambda s: s.approval is not None or s.stage == "closed", "approval or close"
    )
    assert (status.approval is not None) is asks
    if asks:  # the limit is paid at once, the cent above it waits
        await case.eventually(lambda: len(case.paid()) == 1, "paid the limit")
    expected = ("refund:within-limit", "25.00 USD") if asks else ("refund", f"{paid} USD")
    assert case.paid() == [expected]


async def test_above_discretion_pays_the_limit_at_once_and_the_rest_once_approved(
    run: Runner,
) -> None:
    case = await run.open(s5("30.00"))  # the limit: paid x 1, capped at 25.00
    status = await case.approval("compensation")
    assert status.approval is not None
    assert status.approval.reason == (
        "compensation of 30.00 USD is above the frontline limit of 25.00 USD: 25.00 USD paid at "
        "once, 5.00 USD waits for this approval"
    )
    assert await case.sent_to_ops("approval:compensation") == ["approval:compensation"]
    await case.eventually(
        lambda: "compensation-pending:compensation:sms" in case.to_customer(), "told"
    )
    assert case.paid() == [("refund:within-limit", "25.00 USD")]  # before the decision
    status = await case.status()
    assert states(status) == [("refund:within-limit", "paid"), ("refund", "pending")]
    await case.approve("compensation")
    outcome = await case.result()
    assert case.paid() == [("refund:within-limit", "25.00 USD"), ("refund", "5.00 USD")]
    assert outcome.approval_needed and str(outcome.paid_out) == "30.00 USD"


async def _claims_to_the_approval(case: Case) -> CaseStatus:
    """S1 with two taxis claimed (5.00, 30.00), up to the compensation's approval."""
    for n in (1, 2):
        await case.answer(f"locate-CAR-1-{n}", "not_found")
    await case.claim("taxi-1", "5.00", "Taxi to CAR-2")
    await case.claim("taxi-2", "30.00", "Taxi home")
    await case.answer("pickup-1", "picked_up")
    await case.answer("claims", "done")
    return await case.approval("compensation")


async def _claims_then_decline(case: Case) -> CaseStatus:
    status = await _claims_to_the_approval(case)
    # Of the 77.00, the 21.00 limit is paid at once: the approval is for the other 56.00.
    assert status.approval is not None and str(status.approval.amount) == "56.00 USD"
    await case.approve("compensation", approved=False, note="the taxi home is not ours to pay")
    return await case.until(lambda s: s.stage == "follow_up", "follow-up")


async def test_declined_still_pays_the_limit_in_plan_order(run: Runner) -> None:
    case = await run.open("s1-missing-car.json")
    status = await _claims_then_decline(case)

    # Limit 21.00: half of the 42.00 refund was paid at once; the rest, and both taxis
    # behind it in plan order, waited for the approval and were declined.
    assert states(status) == [
        ("refund:within-limit", "paid"),
        ("refund", "declined"),
        ("reimburse:taxi-1", "declined"),
        ("reimburse:taxi-2", "declined"),
    ]
    assert case.paid() == [("refund:within-limit", "21.00 USD")]


async def test_the_customer_is_told_what_was_paid_pending_and_declined(run: Runner) -> None:
    case = await run.open("s1-missing-car.json")
    await _claims_then_decline(case)
    (pending,) = [
        e.request
        for e in case.effects("send_message")
        if e.step == "compensation-pending:compensation:email"
    ]
    assert "- refund of what you paid (paid at once): 21.00 USD" in pending.body
    assert "The rest, 56.00 USD, needs a manager's approval, due by" in pending.body
    (confirmation,) = [e.request for e in case.effects("send_message") if e.step == "confirm:email"]
    declined = confirmation.body.split("did not grant it:")[1]
    why = "(why: the taxi home is not ours to pay)"
    assert f"- reimbursement: Taxi home: 30.00 USD {why}" in declined
    assert f"- refund of what you paid (the rest): 21.00 USD {why}" in declined
    assert "a different manager reviews it again" in declined
    assert "In all we paid or credited you 21.00 USD" in confirmation.body


async def test_a_partial_approval_pays_that_much_in_plan_order_and_declines_the_rest(
    run: Runner,
) -> None:
    case = await run.open("s1-missing-car.json")
    await _claims_to_the_approval(case)  # 56.00 waits, beyond the 21.00 paid at once
    usd = lambda amount: Money.of(amount, "USD")  # noqa: E731
    for part, note, why in (
        (usd("56.00"), "x", "less than the 56.00 USD that waits"),
        (usd("0.00"), "x", "more than 0"),
        (Money.of("10.00", "EUR"), "x", "the amount is in EUR but 56.00 USD waits"),
        (usd("30.00"), None, "needs a note saying why the rest is declined"),
    ):
        with pytest.raises(Refused, match=why):
            await case.approve("compensation", note=note, amount=part)
    await case.approve("compensation", note="the taxi home is not ours to pay", amount=usd("30.00"))
    status = await case.until(lambda s: s.stage == "follow_up", "follow-up")

    # 30.00 in plan order: the rest of the refund (21.00), the first taxi (5.00), and 4.00 of
    # the taxi home under a step of its own; the other 26.00 of it is declined with the note.
    assert states(status) == [
        ("refund:within-limit", "paid"),
        ("refund", "paid"),
        ("reimburse:taxi-1", "paid"),
        ("reimburse:taxi-2:approved-part", "paid"),
        ("reimburse:taxi-2", "declined"),
    ]
    assert case.paid() == [
        ("refund:within-limit", "21.00 USD"),
        ("refund", "21.00 USD"),
        ("reimburse:taxi-1", "5.00 USD"),
        ("reimburse:taxi-2:approved-part", "4.00 USD"),
    ]
    declined = status.compensation[-1]
    assert str(declined.amount) == "26.00 USD"
    assert declined.declined_because == (
        "30.00 USD of 56.00 USD approved: the taxi home is not ours to pay"
    )
    assert [d.amount for d in status.decisions] == [usd("30.00")]
    (confirmation,) = [e.request for e in case.effects("send_message") if e.step == "confirm:email"]
    assert "In all we paid or credited you 51.00 USD" in confirmation.body
    assert "the taxi home is not ours to pay" in confirmation.body.split("did not grant it:")[1]


async def test_a_refused_payment_escalates_with_its_reason_and_stays_open(run: Runner) -> None:
    case = await run.open("s5-wrong-drink.json")
    case.fakes.on("make_payment").fail_permanently("card declined")
    outcome = await case.result()
    status = await case.status()

    assert [c.outcome for c in case.fakes.called("make_payment")] == ["failed"]  # not retried
    assert case.paid() == []
    (item,) = status.compensation
    assert (item.state, item.failure) == ("failed", "card declined")
    assert reasons(status) == ["refund of what you paid failed: card declined"]
    assert case.to_ops() == ["escalation:1"]
    (confirmation,) = [e.request for e in case.effects("send_message") if e.step == "confirm:sms"]
    assert "Still open, a colleague will contact you about" in confirmation.body
    assert "In all we paid" not in confirmation.body
    assert str(outcome.paid_out) == "0.00 USD" and outcome.escalations == 1


async def test_a_payment_retried_through_outages_and_a_lost_reply_is_paid_once(
    run: Runner,
) -> None:
    case = await run.open("s5-wrong-drink.json")
    case.fakes.on("make_payment", step="refund").fail(2, "gateway timeout").lose_reply()
    outcome = await case.result()
    status = await case.status()

    calls = case.fakes.called("make_payment")
    assert [(c.key, c.attempt, c.outcome) for c in calls] == [
        (f"{case.id}:refund", 1, "failed"),
        (f"{case.id}:refund", 2, "failed"),
        (f"{case.id}:refund", 3, "failed"),  # committed, the answer lost
        (f"{case.id}:refund", 4, "repeat"),  # the same key: the first payment's receipt
    ]
    assert case.paid() == [("refund", "4.80 USD")]
    assert status.compensation[0].receipt == case.effects("make_payment")[0].result.payment_id
    assert outcome.escalations == 0 and str(outcome.paid_out) == "4.80 USD"


async def test_payment_retries_are_bounded_then_escalate(run: Runner) -> None:
    case = await run.open("s5-wrong-drink.json")
    case.fakes.on("make_payment").fail_always("gateway timeout")
    await case.result()
    status = await case.status()
    assert len(case.fakes.called("make_payment")) == 5  # the playbook's payment attempts
    assert reasons(status) == [
        "refund of what you paid failed: gateway timeout (gave up after retries)"
    ]


async def test_exchange_pays_coupon_grants_perk_and_waives_the_difference_once(
    run: Runner,
) -> None:
    case = await run.open("s4-wrong-size.json")
    case.fakes.on("grant_perk").fail(1)
    await case.answer("substitute", "substitute", value="SHORTS-NAVY-M")
    status = await case.until(lambda s: s.stage == "follow_up", "follow-up")

    assert states(status) == [("waiver", "paid"), ("coupon", "paid"), ("perk:vip", "paid")]
    (substitute,) = case.effects("place_substitute")
    assert (substitute.step, substitute.request.sku, str(substitute.request.waived)) == (
        "substitute",
        "SHORTS-NAVY-M",
        "7.00 USD",
    )
    assert case.paid() == [("coupon", "10.00 USD")]  # the waiver is not a payment
    assert case.steps("grant_perk") == ["perk:vip"]
    assert [c.outcome for c in case.fakes.called("grant_perk")] == ["failed", "done"]


async def test_declined_exchange_keeps_the_waiver_that_fits_and_drops_the_coupon(
    run: Runner,
) -> None:
    # A tighter limit: the 7.00 waiver + 10.00 coupon no longer fit in 12.00.
    playbooks = book("wrong_item", discretion={"floor": "12", "fraction_of_paid": "0"})
    case = await run.open("s4-wrong-size.json", playbooks)
    await case.answer("substitute", "substitute", value="SHORTS-NAVY-M")
    await case.approve("compensation", approved=False)
    status = await case.until(lambda s: s.stage == "follow_up", "follow-up")

    assert states(status) == [("waiver", "paid"), ("coupon", "declined"), ("perk:vip", "paid")]
    assert case.paid() == []
    (substitute,) = case.effects("place_substitute")
    assert str(substitute.request.waived) == "7.00 USD"


async def test_reopen_goodwill_beyond_the_limit_asks_and_is_paid_once_approved(
    solo: Runner,
) -> None:
    case = await solo.open(
        "s4-wrong-size.json", book("wrong_item", compensation={"reopen_goodwill": "11"})
    )
    await case.answer("substitute", "substitute", value="SHORTS-NAVY-M")
    await case.until(lambda s: s.stage == "follow_up", "follow-up")
    await case.skip(timedelta(days=3))
    await case.answer("follow-up-1", "not_satisfied", comment="they fade")
    status = await case.approval("reopen-1")
    assert status.approval is not None and status.approval.reason == (
        "compensation of 11.00 USD on top of 17.00 USD already granted is above the frontline "
        "limit of 27.00 USD"
    )
    await case.approve("reopen-1")
    await case.until(lambda s: s.stage == "follow_up", "second follow-up")
    assert case.paid() == [("coupon", "10.00 USD"), ("coupon:reopen-1", "11.00 USD")]
    assert case.to_customer()[-3:] == [
        "ask:follow-up-1:email",
        "compensation-pending:reopen-1:email",  # nothing fits the limit: all of it waits
        "confirm:2:email",
    ]
