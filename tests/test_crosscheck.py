"""The timeline checks each written confirmation against what the history shows was done: on the
committed scenario histories it finds nothing wrong, and on tampered ones it names the lines."""

from __future__ import annotations

from datetime import datetime

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory

from makegood.audit.crosscheck import Confirmation, Deed, check, listed
from makegood.audit.summary import summarize
from makegood.audit.timeline import timeline
from makegood.domain.money import Money
from tests.test_audit import by_file, committed

AT = datetime(2026, 12, 1, 12, 0)


async def history(name: str) -> WorkflowHistory:
    return next(h for h in await committed() if h.workflow_id == by_file(name))


@pytest.mark.parametrize("name", ["s1", "s2", "s3", "s4", "s5", "s6"])
async def test_every_scenarios_confirmation_matches_what_was_done(name: str) -> None:
    histories = [h for h in await committed() if h.workflow_id.startswith(by_file(name))]
    lines = timeline(histories)
    checks = [line for line in lines if line.kind == "check"]
    assert len(checks) == 1 and checks[0].said is None, checks
    assert "match what the history shows was done" in checks[0].text
    # It follows the confirmation it checks.
    sent = lines[lines.index(checks[0]) - 1]
    assert sent.kind == "message" and sent.text.endswith("Confirmation: what we did")
    assert any(f.endswith("matches what was done, line by line") for f in summarize(lines))


async def test_a_payment_the_history_does_not_show_is_reported() -> None:
    """S1 with the second taxi's payment gone from the history (as if it never completed): the
    confirmation still lists it, and its total is no longer what was paid."""
    s1 = await history("s1")
    events = list(s1.events)
    paid = [
        e
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
        and "pay_" in e.activity_task_completed_event_attributes.result.payloads[0].data.decode()
    ]
    assert len(paid) == 4  # the refund in two parts (within the limit, then approved), 2 taxis
    events.remove(paid[-1])
    lines = timeline([WorkflowHistory(s1.workflow_id, events)])
    check_line = next(line for line in lines if line.kind == "check")
    assert check_line.text.startswith("confirmation check found 2 problem(s)")
    assert (check_line.said or "").splitlines() == [
        "listed but not done: reimbursement: Taxi: 23.75 USD",
        "the total paid or credited, 60.50 USD, is not stated",
    ]
    confirmation = next(f for f in summarize(lines) if f.startswith("Confirmation of"))
    assert "listed but not done: reimbursement: Taxi: 23.75 USD" in confirmation


async def test_a_payment_of_another_amount_than_the_letter_says_is_reported() -> None:
    """S1 with the second taxi paid at 32.75 instead of the 23.75 the confirmation states."""
    s1 = await history("s1")
    events = list(s1.events)
    for event in events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            payload = event.activity_task_scheduled_event_attributes.input.payloads[0]
            if b"reimburse:taxi-2" in payload.data:
                payload.data = payload.data.replace(b'"23.75"', b'"32.75"')
    lines = timeline([WorkflowHistory(s1.workflow_id, events)])
    check_line = next(line for line in lines if line.kind == "check")
    problems = (check_line.said or "").splitlines()
    assert problems[0] == "listed but not done: reimbursement: Taxi: 23.75 USD"
    assert problems[1].startswith("done but not listed: reimbursement of 32.75 USD to M-42")
    assert problems[2] == "the total paid or credited, 93.25 USD, is not stated"


def taxi(amount: str, event_id: int) -> Deed:
    money = Money.of(amount, "USD")
    return Deed(AT, event_id, f"taxi {amount}", ("reimbursement: Taxi", str(money)), money)


def letter(*done: str, total: str) -> Confirmation:
    body = "\n".join(["Dear Ada,", "", "here is everything:", *(f"- {d}" for d in done)])
    body += f"\n\nIn all we paid or credited you {total}."
    return Confirmation(datetime(2026, 12, 1, 13, 0), 999, body, listed(body))


def test_each_line_and_each_deed_is_paired_once() -> None:
    deeds = [taxi("18.50", 1), taxi("23.75", 2)]
    both = letter(
        "reimbursement: Taxi: 18.50 USD", "reimbursement: Taxi: 23.75 USD", total="42.25 USD"
    )
    assert check(both, deeds) == []
    # The same taxi listed twice does not account for the other one.
    twice = letter(
        "reimbursement: Taxi: 18.50 USD", "reimbursement: Taxi: 18.50 USD", total="42.25 USD"
    )
    assert check(twice, deeds) == [
        "listed but not done: reimbursement: Taxi: 18.50 USD",
        "done but not listed: taxi 23.75",
    ]
    # An amount that differs from what was paid is not the payment.
    wrong = letter(
        "reimbursement: Taxi: 18.50 USD", "reimbursement: Taxi: 32.75 USD", total="51.25 USD"
    )
    assert check(wrong, deeds) == [
        "listed but not done: reimbursement: Taxi: 32.75 USD",
        "done but not listed: taxi 23.75",
        "the total paid or credited, 42.25 USD, is not stated",
    ]


def test_optional_deeds_back_a_line_but_need_not_be_listed() -> None:
    handoff = Deed(AT, 5, "escalated to ops", ("R-1001",), required=False)
    line = "a colleague is checking that reservation R-1001 is registered to you"
    assert check(letter(line, total="0.00 USD"), [handoff]) == []
    assert check(letter(total="0.00 USD"), [handoff]) == []  # a hand-off need not be listed
    # A line no deed names is reported even when optional deeds exist.
    assert check(letter("refunded your ticket", total="0.00 USD"), [handoff]) == [
        "listed but not done: refunded your ticket"
    ]


def test_deeds_after_the_confirmation_are_not_expected_in_it() -> None:
    later = Deed(datetime(2026, 12, 2), 1, "taxi later", ("Taxi",), Money.of("5.00", "USD"))
    assert check(letter(total="0.00 USD"), [later]) == []


def test_nothing_yet_is_an_empty_list() -> None:
    assert listed("Dear Ada,\n\n- nothing yet\n\nStill open:\n- refund: 4.00 USD") == []
    assert listed("x\n- a\n- b\n\nStill open:\n- c") == ["a", "b"]
