"""S1, S4 and S5 on the time-skipping server with the real local adapters, replayed after."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from temporalio.testing import WorkflowEnvironment

from makegood.adapters.local.store import LocalStore
from makegood.domain.case import CaseInput
from makegood.domain.playbook import Discretion
from tests.harness import CONVERTER, keys, playbooks, start, ticket


async def test_s5_wrong_drink_remade_and_refunded_without_approval(
    env: WorkflowEnvironment, store: LocalStore, task_queue: str
) -> None:
    case = await start(env.client, store, ticket("s5-wrong-drink.json"), task_queue, env=env)
    outcome = await case.result()
    await case.replay(record="s5")

    assert outcome.resolution == "resolved"
    assert outcome.approval_needed is False
    assert [a["action"] for a in await case.actions()] == ["remake"]
    payments = await case.payments()
    assert [(p["kind"], p["amount"], p["currency"]) for p in payments] == [
        ("refund", "4.80", "USD")
    ]
    assert keys(await case.messages()) == ["ack:sms", "confirm:sms"]
    confirmation = (await case.messages())[-1]["body"]
    assert "remade oat-flat-white" in confirmation and "4.80 USD" in confirmation
    # No follow-up wait: the case closed right after the confirmation, in simulated time too.
    assert outcome.seconds_to_close < 60
    recorded = await store.rows("SELECT outcome FROM outcomes WHERE case_id = ?", case.id)
    assert len(recorded) == 1 and '"resolution":"resolved"' in recorded[0]["outcome"]


async def test_s4_wrong_size_out_of_stock_substitute_within_discretion(
    env: WorkflowEnvironment, store: LocalStore, task_queue: str
) -> None:
    case = await start(env.client, store, ticket("s4-wrong-size.json"), task_queue, env=env)
    status = await case.question("substitute")
    assert "SHORTS-BLUE-M is out of stock" in status.question.prompt
    await case.answer("substitute", "substitute", value="SHORTS-NAVY-M")
    await case.skip(timedelta(days=3))
    await case.answer("follow-up-1", "satisfied")
    outcome = await case.result()
    await case.replay(record="s4")

    status = await case.status()
    assert [e.detail for e in status.events if e.kind == "stock_check"] == [
        "SHORTS-BLUE-M: 0 in stock"
    ]
    actions = await case.actions()
    assert [a["action"] for a in actions] == ["return_label", "perk", "substitute_order"]
    assert "prepaid label" in actions[0]["detail"] and "pre-filled form" in actions[0]["detail"]
    assert "7.00 USD of price difference waived" in actions[2]["detail"]
    assert await store.rows("SELECT perk FROM perks WHERE customer_id = 'C-7'") == [{"perk": "vip"}]
    payments = await case.payments()
    assert [(p["kind"], p["amount"]) for p in payments] == [("coupon", "10.00")]
    assert outcome.approval_needed is False and status.approval is None
    assert outcome.goodwill.amount == Decimal("17.00")  # 7.00 waived + 10.00 coupon
    assert outcome.resolution == "resolved"
    assert await store.rows("SELECT quantity FROM stock WHERE sku = 'SHORTS-NAVY-M'") == [
        {"quantity": 4}
    ]
    assert keys(await case.messages()) == [
        "ack:email",
        "ask:substitute:email",
        "confirm:email",
        "ask:follow-up-1:email",
    ]


async def test_s1_missing_car_twice_escalates_upgrades_and_pays_each_once(
    env: WorkflowEnvironment, store: LocalStore, task_queue: str
) -> None:
    case = await start(env.client, store, ticket("s1-missing-car.json"), task_queue, env=env)
    # The first car: horn twice, the member hears nothing.
    await case.answer("locate-CAR-1-1", "not_found")
    await case.answer("locate-CAR-1-2", "not_found")
    # Re-booked to a second car nearby; told by email and app to take a taxi and claim it.
    await case.question("pickup-1")
    await case.claim("taxi-1", "18.50")
    await case.answer("pickup-1", "missing")
    await case.answer("locate-CAR-2-1", "not_found")
    await case.answer("locate-CAR-2-2", "not_found")
    # The second car is missing too: a manager approves the upgraded re-booking.
    await case.approve("rebook-2")
    await case.claim("taxi-2", "23.75")
    await case.answer("pickup-2", "picked_up")
    await case.answer("claims", "done")
    # 84.25 is above the frontline limit (half of 42.00): 21.00 of the refund is paid at
    # once, and the manager approves the other 63.25.
    status = await case.until(lambda s: s.approval is not None, "compensation approval")
    assert status.approval.amount is not None and str(status.approval.amount) == "63.25 USD"
    await case.approve("compensation")
    await case.until(lambda s: s.stage == "follow_up", "follow-up")
    await case.skip(timedelta(days=1))
    await case.answer("follow-up-1", "satisfied")
    outcome = await case.result()
    await case.replay(record="s1")

    honks = [a["target"] for a in await case.actions("honk")]
    assert honks == ["CAR-1", "CAR-1", "CAR-2", "CAR-2"]
    assert max(honks.count(car) for car in set(honks)) <= 2
    rebooks = await case.actions("rebook")
    assert len(rebooks) == 2
    assert "CAR-3 (premium)" in rebooks[1]["detail"]
    bookings = await store.rows(
        "SELECT id, vehicle, status FROM bookings WHERE id = 'R-1001' OR case_id = ? "
        "ORDER BY created_at",
        case.id,
    )
    assert [(b["vehicle"], b["status"]) for b in bookings] == [
        ("CAR-1", "released"),
        ("CAR-2", "released"),
        ("CAR-3", "active"),
    ]
    # Released newest first.
    releases = [a["target"] for a in await case.actions("release")]
    assert releases == [bookings[1]["id"], "R-1001"]

    payments = await case.payments()
    assert sorted((p["kind"], p["amount"]) for p in payments) == [
        ("refund", "21.00"),
        ("refund", "21.00"),
        ("reimbursement", "18.50"),
        ("reimbursement", "23.75"),
    ]
    assert len({p["key"] for p in payments}) == 4
    assert await case.paid_total() == Decimal("84.25")

    messages = await case.messages()
    customer = [m for m in messages if m["recipient"] != "ops@makegood.example.com"]
    confirmations = [m for m in customer if m["subject"].startswith("Confirmation")]
    assert len(confirmations) == 1
    body = confirmations[0]["body"]
    for fragment in ("21.00 USD", "18.50 USD", "23.75 USD", "84.25 USD", "CAR-3", "released"):
        assert fragment in body, fragment
    assert {m["channel"] for m in customer if "rebook" in m["key"]} == {"email", "app"}
    assert outcome.resolution == "resolved" and outcome.approval_needed
    assert outcome.paid_out.amount == Decimal("84.25")
    assert outcome.remedy_attempts == 2


async def test_the_playbook_in_force_is_recorded_in_the_cases_first_event(
    env: WorkflowEnvironment, store: LocalStore, task_queue: str
) -> None:
    book = playbooks()
    stricter = book.model_copy(
        update={
            "version": "2026.12.0-test",
            "playbooks": {
                **book.playbooks,
                "wrong_order": book.playbooks["wrong_order"].model_copy(
                    update={"discretion": Discretion(fraction_of_paid=Decimal(0), floor=Decimal(2))}
                ),
            },
        }
    )
    case = await start(
        env.client, store, ticket("s5-wrong-drink.json"), task_queue, stricter, env=env
    )
    status = await case.until(lambda s: s.approval is not None, "approval")

    history = await case.handle.fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    (recorded,) = await CONVERTER.decode(started.input.payloads, [CaseInput])
    assert recorded.playbook_version == "2026.12.0-test"
    assert recorded.playbook == stricter.playbooks["wrong_order"]
    # The case decides by what it recorded: a 2.00 USD limit puts the 4.80 refund to a manager.
    assert status.playbook_version == "2026.12.0-test"
    assert str(status.discretion_limit) == "2.00 USD"
    await case.approve("compensation")
    await case.result()
    await case.replay()


async def test_s3_broken_ereader_is_replaced_at_once_without_a_charge(
    env: WorkflowEnvironment, store: LocalStore, task_queue: str
) -> None:
    case = await start(env.client, store, ticket("s3-ereader.json"), task_queue, env=env)
    status = await case.until(lambda s: s.stage == "follow_up", "follow-up")
    await case.skip(timedelta(days=3))
    await case.answer("follow-up-1", "satisfied")
    outcome = await case.result()
    await case.replay(record="s3")

    assert keys(await case.messages()) == [
        "ack:email",
        "remedy:email",
        "confirm:email",
        "ask:follow-up-1:email",
    ]
    assert [(a["action"], a["detail"]) for a in await case.actions()] == [
        ("replacement", "EREADER-7 shipped to replace EREADER-7")
    ]
    assert await case.payments() == []
    assert outcome.paid_out.amount == Decimal(0) and outcome.approval_needed is False
    assert status.first_contact_at is not None
    assert outcome.seconds_to_first_contact is not None
    assert outcome.seconds_to_first_contact < 30
