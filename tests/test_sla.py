"""SLA clocks fire warnings and breaches at the right moments; operators act on stuck cases."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from temporalio.testing import WorkflowEnvironment

from makegood.adapters.local.store import LocalStore
from makegood.cases import Refused, send
from makegood.domain.actions import Actor, AssignCase, CancelCase, EscalateCase
from makegood.domain.case import CaseStatus, SlaClock
from makegood.domain.playbook import PlaybookSet, Sla
from makegood.domain.sla import SlaBook
from tests.harness import AGENT, CUSTOMER, MANAGER, keys, playbooks, start, ticket

OPS = "ops@makegood.example.com"
T0 = datetime(2026, 11, 23, 9, 0)


def clock(status: CaseStatus, label: str) -> SlaClock:
    return next(c for c in status.slas if c.label == label)


def with_sla(kind: str, **targets: object) -> PlaybookSet:
    book = playbooks()
    changed = book.playbooks[kind].model_copy(update={"sla": Sla.model_validate(targets)})
    return book.model_copy(update={"playbooks": {**book.playbooks, kind: changed}})


def test_clock_bookkeeping_pauses_and_orders_alarms() -> None:
    clocks: list[SlaClock] = []
    book = SlaBook(
        Sla(
            first_contact=None,
            remedy_offer=timedelta(hours=1),
            resolution=timedelta(hours=4),
            warn_at=Decimal("0.5"),
        ),
        clocks,
    )
    assert book.start("first_contact", T0) is None  # switched off
    book.start("remedy_offer", T0)
    book.start("resolution", T0)
    assert book.next_alarm(T0)[:1] == (T0 + timedelta(minutes=30),)
    book.pause("resolution", T0 + timedelta(hours=1))
    book.resume("resolution", T0 + timedelta(hours=3))
    # Two hours paused: the resolution warning (2 h of running time) moves to 4 h.
    book.stop("remedy_offer", T0 + timedelta(minutes=10))
    when, c, alarm = book.next_alarm(T0 + timedelta(hours=3))  # type: ignore[misc]
    assert (when, c.label, alarm) == (T0 + timedelta(hours=4), "resolution", "warning")
    book.fire(c, "warning", when)
    assert book.next_alarm(when)[:1] == (T0 + timedelta(hours=6),)  # type: ignore[index]
    assert book.level() == "warning"
    assert clocks[0].state == "met" and clocks[0].elapsed == timedelta(minutes=10)


async def test_approval_sla_warns_at_80_percent_and_breaches_at_the_target(
    env: WorkflowEnvironment, store: LocalStore, task_queue: str
) -> None:
    case = await start(
        env.client,
        store,
        ticket("s1-missing-car.json"),
        task_queue,
        with_sla("car_missing", approval_decision="PT10M"),
        env=env,
    )
    await case.answer("locate-CAR-1-1", "not_found")
    await case.answer("locate-CAR-1-2", "not_found")
    await case.answer("pickup-1", "picked_up")
    await case.answer("claims", "done")
    asked = (await case.until(lambda s: s.approval is not None, "approval")).approval
    assert asked is not None
    await send(
        case.client,
        case.id,
        AssignCase(
            to=Actor(id="sam", role="agent"), contact="sam@makegood.example.com", by=MANAGER
        ),
    )

    await case.skip(timedelta(minutes=7))
    status = await case.status()
    assert clock(status, "approval:compensation").level == "ok"
    await case.skip(timedelta(minutes=1, seconds=30))  # 8.5 min: past 80 %
    status = await case.until(
        lambda s: clock(s, "approval:compensation").level == "warning", "warning"
    )
    warned = clock(status, "approval:compensation").warned_at
    assert warned is not None
    assert abs(warned - (asked.asked_at + timedelta(minutes=8))) < timedelta(seconds=1)
    await case.skip(timedelta(minutes=2))
    status = await case.until(
        lambda s: clock(s, "approval:compensation").level == "breached", "breach"
    )
    breach = clock(status, "approval:compensation")
    assert breach.breached_at is not None
    assert abs(breach.breached_at - (asked.asked_at + timedelta(minutes=10))) < timedelta(seconds=1)
    assert [e.reason for e in status.escalations] == [
        "SLA breached: approval decided (approval:compensation) took longer than 0:10:00; "
        "escalated to a manager"
    ]
    ops = [m for m in await case.messages() if m["recipient"] == OPS]
    assert keys(ops) == ["approval:compensation", "sla:approval:compensation:breach"]
    # The warning goes to the case's owner; the breach escalates to ops.
    (warning,) = [m for m in await case.messages() if m["recipient"] == "sam@makegood.example.com"]
    assert keys([warning]) == ["sla:approval:compensation:warning"]
    assert "0:08:00 of its 0:10:00 target. Owner: agent:sam" in warning["body"]

    await case.approve("compensation")
    status = await case.until(lambda s: s.stage == "follow_up", "follow-up")
    decided = clock(status, "approval:compensation")
    assert decided.state == "missed" and decided.stopped_at is not None
    assert clock(status, "first_contact").state == "met"
    assert clock(status, "first_contact").elapsed < timedelta(seconds=30)
    await case.replay()


async def test_waiting_for_the_customer_pauses_the_resolution_clock(
    env: WorkflowEnvironment, store: LocalStore, task_queue: str
) -> None:
    case = await start(
        env.client,
        store,
        ticket("s4-wrong-size.json"),
        task_queue,
        with_sla("wrong_item", remedy_offer="PT2H", resolution="PT4H"),
        env=env,
    )
    await case.question("substitute")
    await case.skip(timedelta(hours=20))  # the customer takes most of a day to choose
    await case.answer("substitute", "substitute", value="SHORTS-NAVY-M")
    status = await case.until(lambda s: s.stage == "follow_up", "follow-up")

    resolution = clock(status, "resolution")
    assert resolution.state == "met" and resolution.breached_at is None
    assert resolution.elapsed < timedelta(minutes=1)
    # The remedy offer is ours to make, customer or not: 20 hours is a breach.
    offer = clock(status, "remedy_offer")
    assert offer.state == "missed" and offer.breached_at is not None
    assert [e.reason for e in status.escalations] == [
        "SLA breached: remedy offered took longer than 2:00:00; escalated to a manager"
    ]


async def test_operators_assign_escalate_and_are_refused_when_it_makes_no_sense(
    env: WorkflowEnvironment, store: LocalStore, task_queue: str
) -> None:
    case = await start(env.client, store, ticket("s1-missing-car.json"), task_queue, env=env)
    await case.question("locate-CAR-1-1")
    sam = Actor(id="sam", role="agent")
    await send(case.client, case.id, AssignCase(to=sam, by=MANAGER))
    with pytest.raises(Refused, match="already assigned to agent:sam"):
        await send(case.client, case.id, AssignCase(to=sam, by=MANAGER))
    with pytest.raises(Refused, match="owned by an agent or a manager, not a customer"):
        await send(case.client, case.id, AssignCase(to=CUSTOMER, by=MANAGER))
    await send(case.client, case.id, EscalateCase(reason="customer is a journalist", by=AGENT))
    status = await case.status()
    assert status.owner == "agent:sam"
    assert [e.reason for e in status.escalations] == [
        "customer is a journalist (escalated by agent:sam)"
    ]
    assert [(e.kind, e.by) for e in status.events if e.kind == "assigned"] == [
        ("assigned", "manager:mia")
    ]


async def test_cancel_releases_reservations_tells_the_customer_and_records_who(
    env: WorkflowEnvironment, store: LocalStore, task_queue: str
) -> None:
    case = await start(env.client, store, ticket("s1-missing-car.json"), task_queue, env=env)
    await case.answer("locate-CAR-1-1", "not_found")
    await case.answer("locate-CAR-1-2", "not_found")
    await case.question("pickup-1")  # CAR-2 is booked and waiting
    with pytest.raises(Refused, match="cancelled by an agent or a manager, not a customer"):
        await send(case.client, case.id, CancelCase(reason="never mind", by=CUSTOMER))
    await send(case.client, case.id, CancelCase(reason="member took a train instead", by=MANAGER))
    outcome = await case.result()
    status = await case.status()

    assert outcome.resolution == "cancelled"
    assert status.cancelled == "member took a train instead (by manager:mia)"
    assert [(b.vehicle, b.status) for b in status.bookings] == [
        ("CAR-1", "released"),
        ("CAR-2", "released"),
    ]
    assert [a["target"] for a in await case.actions("release")] == [status.bookings[1].id, "R-1001"]
    last = (await case.messages())[-1]
    assert keys([last]) == ["cancelled:email"]
    assert "member took a train instead" in last["body"]
    assert all(c.stopped_at is not None for c in status.slas)
    with pytest.raises(Refused, match="is closed"):
        await send(case.client, case.id, CancelCase(reason="again", by=MANAGER))
    await case.replay(record="cancelled")
