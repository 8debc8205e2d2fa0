"""A case can fail, never wedge: inputs the edge refuses, started straight through Temporal,
and faults nobody planned for end with a person on the case and the customer told, instead
of a workflow task that fails on every retry (no escalation, no SLA alerts, no status)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from makegood.cases import LimitReached, TicketRejected, check_ticket, send
from makegood.domain import calls, steps
from makegood.domain.actions import AgentNote, AssignCase, EscalateCase
from makegood.domain.case import CaseStatus
from makegood.domain.money import Money
from makegood.domain.provider import Quote
from tests.fast.driver import Case, Runner, book, make_ticket
from tests.harness import AGENT, MANAGER

pytestmark = pytest.mark.fast


def reasons(status: CaseStatus) -> list[str]:
    return [e.reason for e in status.escalations]


async def _handed_off(case: Case) -> CaseStatus:
    outcome = await case.result()
    assert outcome.resolution == "handed_off"
    status = await case.status()
    assert status.stage == "closed" and status.resolution == "handed_off"
    assert status.handed_off is not None
    channel = case.fakes.called(calls.SEND_MESSAGE.name)[-1].request.channel
    assert case.to_customer() == [steps.on_channel(steps.TAKEN_OVER, channel)]
    taken = [e.request for e in case.effects(calls.SEND_MESSAGE.name) if e.step.startswith("taken")]
    assert "a member of our operations team now has it" in taken[0].body
    assert "within 2 hours" in taken[0].body
    assert case.paid() == []  # nothing decided from a ticket the case cannot carry
    return status


async def test_a_ticket_without_a_time_zone_is_handed_to_a_person(run: Runner) -> None:
    t = make_ticket("s5-wrong-drink.json", reported_at="2026-12-01T09:30:00")
    assert t.reported_at is not None and t.reported_at.tzinfo is None
    with pytest.raises(TicketRejected) as refused:
        check_ticket(t, book())
    assert refused.value.problems[0].startswith("reported_at: needs a time zone")

    case = await run.start(run.case_input(t))
    status = await _handed_off(case)
    assert "reported_at: needs a time zone" in reasons(status)[0]
    assert status.opened_at.tzinfo is not None  # clocks started from receipt, not a guess
    assert case.fakes.called(calls.REMAKE_ORDER.name) == []


async def test_a_total_above_the_money_ceiling_is_handed_to_a_person(run: Runner) -> None:
    # Every claim at the default playbook's maximum on top of a full refund passes the ceiling.
    playbook_set = book()
    t = make_ticket("s1-missing-car.json", incident={"paid": {"amount": "999000.00"}})
    with pytest.raises(TicketRejected) as refused:
        check_ticket(t, playbook_set)
    [problem] = refused.value.problems
    assert problem.startswith("incident.paid.amount: 999000.00 USD could add up to 100")
    assert problem.endswith(
        "above the maximum of 1000000 any case may pay: a person must handle it"
    )
    case = await run.start(run.case_input(t, playbook_set))
    status = await _handed_off(case)
    assert "above the maximum of 1000000" in reasons(status)[0]
    assert case.fakes.called(calls.LOCATE_VEHICLE.name) == []


async def test_a_substitute_priced_in_another_currency_is_refunded_not_relabelled(
    run: Runner,
) -> None:
    run.fakes.on(calls.QUOTE_SUBSTITUTE).returns(
        Quote(
            substitute_sku="SHORTS-NAVY-M",
            available=True,
            difference=Money.of("5.00", "EUR"),
        )
    )
    case = await run.open("s4-wrong-size.json")
    await case.answer("substitute", "substitute", value="SHORTS-NAVY-M")
    status = await case.approval("compensation")
    assert reasons(status) == [
        "substitute SHORTS-NAVY-M is priced in EUR but this case is in USD; refunding"
    ]
    assert [i.kind for i in status.compensation] == ["refund", "refund", "coupon", "perk"]
    assert case.steps("place_substitute") == []


async def test_a_malformed_provider_answer_hands_the_case_to_a_person(run: Runner) -> None:
    """A provider answer the workflow cannot read (a worker of another version, a broken
    adapter) used to fail every workflow task for good; now a person takes over."""
    # An answer of another shape than the spec's result: the workflow cannot decode it.
    run.fakes.on(calls.REMAKE_ORDER).returns(
        Quote(substitute_sku="X", available=True, difference=Money.of("1.00", "USD"))
    )
    case = await run.open("s5-wrong-drink.json")
    outcome = await case.result()
    status = await case.status()
    assert outcome.resolution == "handed_off" and status.resolution == "handed_off"
    assert status.handed_off is not None and "remake" in status.handed_off.lower()
    assert case.to_customer() == ["ack:sms", "taken-over:sms"]
    assert case.paid() == []


def test_no_currency_is_not_money() -> None:
    for code in ("XXX", "XTS", "XAU", "XDR"):
        with pytest.raises(ValueError, match="not a currency anyone can be paid in"):
            Money.of("1.00", code)
    assert Money.of("1", "XOF").amount == Decimal("1")


# ------------------------------------------------------------------ bounded cases
async def test_notes_and_actions_are_bounded_but_the_ways_out_stay_open(run: Runner) -> None:
    playbook_set = book("car_missing", limits={"notes": 3, "actions": 5})
    case = await run.open("s1-missing-car.json", playbook_set)
    await case.question("locate-CAR-1-1")
    note = AgentNote(text="called the store", by=AGENT)
    for _ in range(3):
        await send(run.env.client, case.id, note)
    with pytest.raises(LimitReached, match="at most 3 notes per case"):
        await send(run.env.client, case.id, note)
    await send(run.env.client, case.id, AssignCase(to=AGENT, by=MANAGER))
    await send(run.env.client, case.id, AssignCase(to=MANAGER, by=MANAGER))
    with pytest.raises(LimitReached, match="has taken its 5 actions"):
        await send(run.env.client, case.id, AssignCase(to=AGENT, by=MANAGER))
    status = await case.status()
    assert (len(status.notes), status.actions) == (3, 5)
    # A flood never locks people out of ending the case.
    await send(run.env.client, case.id, EscalateCase(reason="customer called again", by=AGENT))
    await case.cancel()
    assert (await case.result()).resolution == "cancelled"


async def test_claims_past_the_maximum_are_a_limit(run: Runner) -> None:
    playbook_set = book("car_missing", compensation={"max_claims": 1})
    case = await run.open("s1-missing-car.json", playbook_set)
    await case.claim("taxi-1", "12.00")
    with pytest.raises(LimitReached, match="at most 1 claims per case"):
        await case.claim("taxi-2", "12.00")
