"""The case's two writes to the case index: what they carry, and that an index that fails
neither holds the case up for long nor fails it."""

from __future__ import annotations

from decimal import Decimal

from makegood.domain.indexed import CaseClosedRecord, CaseOpenedRecord
from makegood.domain.money import Money
from tests.fast.driver import Runner


async def test_a_case_tells_the_index_when_it_opens_and_when_it_closes(run: Runner) -> None:
    case = await run.open("s5-wrong-drink.json")
    outcome = await case.result()
    (opened,) = [c.request for c in case.fakes.called("index_case_opened")]
    (closed,) = [c.request for c in case.fakes.called("index_case_closed")]
    assert isinstance(opened, CaseOpenedRecord) and isinstance(closed, CaseClosedRecord)
    assert opened.case_id == case.id and closed.opened == opened
    assert opened.ticket_id == case.id.removeprefix("case-") and opened.customer_id
    assert (closed.closed_at, closed.resolution) == (outcome.closed_at, "resolved")
    assert closed.outcome == outcome  # the documented outcome, for trends


async def test_an_index_that_refuses_does_not_fail_the_case(run: Runner) -> None:
    run.fakes.on("index_case_opened").fail_permanently("index is read-only")
    run.fakes.on("index_case_closed").fail_permanently("index is read-only")
    case = await run.open("s5-wrong-drink.json")
    outcome = await case.result()
    status = await case.status()
    assert outcome.resolution == "resolved" and status.stage == "closed"
    assert [e.detail for e in status.events if e.kind == "index"] == [
        "case index not updated: index is read-only"
    ] * 2
    assert len(case.fakes.called("index_case_opened")) == 1  # refused for good: not retried


async def test_the_outcome_carries_what_the_trends_need(run: Runner) -> None:
    case = await run.open("s5-wrong-drink.json")
    outcome = await case.result()
    assert outcome.customer_paid == Money(amount=Decimal("4.80"), currency="USD")
    assert outcome.paid_by_kind == {"refund": Money(amount=Decimal("4.80"), currency="USD")}
    assert outcome.seconds_to_remedy is not None
    assert outcome.seconds_to_first_contact is not None
    assert outcome.seconds_to_first_contact <= outcome.seconds_to_remedy
    assert outcome.seconds_to_remedy <= outcome.seconds_to_close
    assert outcome.sla_breaches == []
