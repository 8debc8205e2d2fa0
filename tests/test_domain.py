"""The domain's validation and arithmetic: what an operator reads when input is wrong."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from makegood.cases import TicketRejected, parse_ticket
from makegood.domain import compensation, steps
from makegood.domain.actions import Actor, ExpenseClaim
from makegood.domain.case import CompensationItem, SlaClock, SlaLevel, Stage
from makegood.domain.errors import field_errors
from makegood.domain.money import Money
from makegood.domain.playbook import Discretion, Playbook, PlaybookSet, Sla
from makegood.domain.sla import SlaBook
from makegood.domain.ticket import Ticket
from makegood.settings import PlaybookFileError, load_playbooks
from tests.harness import TICKETS, playbooks, ticket


def raw(name: str = "s1-missing-car.json") -> dict[str, Any]:
    data: dict[str, Any] = json.loads((TICKETS / name).read_text())
    return data


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(TicketRejected) as err:
        parse_ticket(json.dumps(data), playbooks())
    return err.value.problems


def test_every_example_ticket_is_valid() -> None:
    for path in sorted(TICKETS.glob("*.json")):
        ticket = parse_ticket(path.read_text(), playbooks())
        assert ticket.case_id == f"case-{ticket.id}"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda t: t["incident"].update(kind="lost_luggage"),
            "incident.kind: unknown value 'lost_luggage'; expected 'car_missing', 'wrong_item', "
            "'wrong_order', 'warranty_fault', 'defective_item' or 'support_call'",
        ),
        (
            lambda t: t["incident"]["paid"].update(amount="-42.00"),
            "incident.paid.amount: must not be negative (got -42.00)",
        ),
        (
            lambda t: t["incident"]["paid"].update(currency="XXY"),
            "incident.paid.currency: Invalid ISO 4217 currency code. See "
            "https://en.wikipedia.org/wiki/ISO_4217",
        ),
        (
            lambda t: t["incident"]["paid"].update(amount="42.001"),
            "incident.paid: amount 42.001 has more than 2 decimal places for USD",
        ),
        (
            lambda t: t["customer"].pop("email"),
            "customer: preferred_channel is 'email' but email is missing",
        ),
        (
            lambda t: t.update(id="T-1001; DROP TABLE"),
            "id: must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit "
            "(got 'T-1001; DROP TABLE')",
        ),
        (
            lambda t: t["customer"].update(id="../etc/passwd"),
            "customer.id: must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or "
            "digit (got '../etc/passwd')",
        ),
        (
            lambda t: t["incident"].update(summary="x" * 2001),
            "incident.summary: String should have at most 2000 characters",
        ),
        (
            lambda t: t["incident"].pop("location"),
            "incident: a car_missing incident needs location (the pickup spot)",
        ),
        (lambda t: t.update(priority="high"), "priority: Extra inputs are not permitted"),
    ],
)
def test_bad_tickets_are_refused_with_the_field_and_the_reason(change: Any, expected: str) -> None:
    data = raw()
    change(data)
    assert problems(data) == [expected]


def test_every_problem_is_reported_at_once() -> None:
    data = raw()
    data["id"] = "bad id"
    data["incident"]["paid"]["amount"] = "-1"
    data["customer"]["preferred_channel"] = "sms"
    del data["customer"]["phone"]
    assert problems(data) == [
        "id: must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit "
        "(got 'bad id')",
        "customer: preferred_channel is 'sms' but phone is missing",
        "incident.paid.amount: must not be negative (got -1)",
    ]


def test_malformed_json_and_kinds_without_a_playbook_are_refused() -> None:
    with pytest.raises(TicketRejected, match=r"\(body\): not valid JSON: .* line 1 column 2"):
        parse_ticket("{oops", playbooks())
    only_cars = PlaybookSet(
        version="v1",
        currency="USD",
        playbooks={"car_missing": playbooks().playbooks["car_missing"]},
    )
    with pytest.raises(
        TicketRejected,
        match=r"incident\.kind: no playbook for 'wrong_order' "
        r"in playbook set v1",
    ):
        parse_ticket(json.dumps(raw("s5-wrong-drink.json")), only_cars)


def test_money_is_decimal_never_float() -> None:
    assert Money.model_validate({"amount": 0.1, "currency": "USD"}).amount == Decimal("0.10")
    total = Money.of("0.10", "USD") + Money.of("0.20", "USD")
    assert total == Money.of("0.30", "USD") and str(total) == "0.30 USD"
    assert str(Money.of("1500", "JPY")) == "1500 JPY"
    with pytest.raises(ValidationError, match="more than 0 decimal places for JPY"):
        Money.of("10.5", "JPY")
    with pytest.raises(ValueError, match="cannot combine USD with EUR"):
        _ = Money.of(1, "USD") + Money.of(1, "EUR")
    with pytest.raises(ValidationError, match="exceeds the maximum"):
        Money.of("1000000.01", "USD")
    with pytest.raises(ValidationError):
        Money.model_validate({"amount": "NaN", "currency": "USD"})


def test_actors_parse_role_and_id() -> None:
    assert Actor.parse("manager:mia") == Actor(id="mia", role="manager")
    with pytest.raises(ValueError, match="expected ROLE:ID"):
        Actor.parse("mia")
    with pytest.raises(ValidationError) as err:
        Actor.parse("boss:mia")
    assert field_errors(err.value) == [
        "role: Input should be 'customer', 'agent', 'manager', 'ops_lead', 'auditor' or 'system'"
    ]


@pytest.mark.parametrize(
    ("paid", "limit"), [("42.00", "21.00"), ("4.80", "10.00"), ("100.00", "50.00")]
)
def test_discretion_limit_is_a_share_of_what_was_paid_with_a_floor(paid: str, limit: str) -> None:
    assert Discretion(fraction_of_paid=Decimal("0.5"), floor=Decimal(10)).limit(
        Money.of(paid, "USD")
    ) == Money.of(limit, "USD")


def test_discretion_ceiling_caps_the_limit() -> None:
    capped = Discretion(fraction_of_paid=Decimal(1), floor=Decimal(10), ceiling=Decimal(25))
    assert capped.limit(Money.of("80.00", "USD")) == Money.of("25.00", "USD")


def test_compensation_plan_makes_whole_first_then_goodwill() -> None:
    book = playbooks()
    claims = [
        ExpenseClaim(
            claim_id=f"taxi-{n}",
            description="Taxi",
            amount=Money.of(a, "USD"),
            by=Actor(id="M-42", role="customer"),
        )
        for n, a in ((1, "18.50"), (2, "23.75"))
    ]
    items = compensation.plan(
        book.playbooks["car_missing"],
        Money.of("42.00", "USD"),
        failed_attempts=2,
        refund_requested=False,
        claims=claims,
        price_difference=None,
    )
    assert [(i.step, str(i.amount)) for i in items] == [
        ("refund", "42.00 USD"),
        ("reimburse:taxi-1", "18.50 USD"),
        ("reimburse:taxi-2", "23.75 USD"),
    ]
    assert compensation.money_total(items, "USD") == Money.of("84.25", "USD")
    kept = compensation.within_limit(items, Money.of("21.00", "USD"))
    assert [i.step for i in kept] == ["reimburse:taxi-1"]

    no_failure = compensation.plan(
        book.playbooks["car_missing"],
        Money.of("42.00", "USD"),
        failed_attempts=0,
        refund_requested=False,
        claims=[],
        price_difference=None,
    )
    assert no_failure == []

    shorts = compensation.plan(
        book.playbooks["wrong_item"],
        Money.of("54.00", "USD"),
        failed_attempts=0,
        refund_requested=False,
        claims=[],
        price_difference=Money.of("22.00", "USD"),
    )
    assert [(i.kind, str(i.amount) if i.amount else None) for i in shorts] == [
        ("waiver", "15.00 USD"),
        ("coupon", "10.00 USD"),
        ("perk", None),
    ]


def test_inconsistent_playbooks_are_refused() -> None:
    base = playbooks().playbooks["car_missing"].model_dump()
    with pytest.raises(ValidationError, match="remedy 'rebook' needs diagnose = 'locate'"):
        Playbook.model_validate({**base, "diagnose": "none"})
    with pytest.raises(ValidationError, match="frontline_attempts cannot exceed"):
        Playbook.model_validate({**base, "frontline_attempts": 5})
    with pytest.raises(ValidationError, match=r"timeouts\.approval must be positive"):
        Playbook.model_validate({**base, "timeouts": {**base["timeouts"], "approval": 0}})


def test_a_bad_playbook_file_stops_start_up_saying_where(tmp_path: Path) -> None:
    path = tmp_path / "playbooks.toml"
    path.write_text(
        'version = "v1"\ncurrency = "USD"\n[playbooks.car_missing]\ntitle = "Cars"\n'
        'remedy = "teleport"\n[retries]\npayment_deadline = "P2D"\n'
    )
    with pytest.raises(PlaybookFileError) as err:
        load_playbooks(path)
    assert err.value.problems == [
        "playbooks.car_missing.remedy: Input should be 'rebook', 'exchange', 'remake', "
        "'replace' or 'callback'",
        "retries: payment_deadline must be positive and at most half the providers' key "
        "retention (12:00:00)",
    ]
    path.write_text("version = ")
    with pytest.raises(PlaybookFileError, match="not TOML"):
        load_playbooks(path)
    with pytest.raises(PlaybookFileError, match="cannot read it: No such file"):
        load_playbooks(tmp_path / "missing.toml")


def test_the_part_within_the_limit_is_split_off_in_plan_order() -> None:
    def item(step: str, kind: str, amount: str | None) -> CompensationItem:
        money = Money.of(amount, "USD") if amount else None
        return CompensationItem.model_validate(
            {"step": step, "kind": kind, "description": step, "amount": money}
        )

    items = [
        item("refund", "refund", "42.00"),
        item("reimburse:taxi-1", "reimbursement", "5.00"),
        item("coupon", "coupon", "10.00"),
        item("perk:vip", "perk", None),
    ]
    split = compensation.split(items, Money.of("21.00", "USD"))
    shown = [(i.step, str(i.amount) if i.amount else None) for i in split.items]
    assert shown == [
        ("refund:within-limit", "21.00 USD"),
        ("refund", "21.00 USD"),
        ("reimburse:taxi-1", "5.00 USD"),
        ("coupon", "10.00 USD"),
        ("perk:vip", None),
    ]
    assert [i.step for i in split.now] == ["refund:within-limit", "perk:vip"]
    assert [i.step for i in split.rest] == ["refund", "reimburse:taxi-1", "coupon"]
    assert split.items[0].description == "refund (paid at once)"
    assert split.items[1].description == "refund (the rest)"
    # Goodwill is never split: a coupon that does not fit waits whole; later items that fit
    # are paid now.
    goodwill = compensation.split(
        [item("coupon", "coupon", "10.00"), item("reimburse:t", "reimbursement", "3.00")],
        Money.of("5.00", "USD"),
    )
    assert [i.step for i in goodwill.now] == ["reimburse:t"]
    assert [i.step for i in goodwill.rest] == ["coupon"]


def test_an_approval_chain_defaults_from_the_older_fields_and_only_goes_up() -> None:
    book = playbooks()
    old = book.playbooks["wrong_order"]  # no chain: timeouts.approval, approval_escalations
    assert [(lv.role, lv.wait, lv.reminders) for lv in old.chain()] == [
        ("manager", old.timeouts.approval, 0)
    ] * (old.timeouts.approval_escalations + 1)
    assert old.on_no_decision == "wait"
    car = book.playbooks["car_missing"]
    assert [lv.role for lv in car.chain()] == ["manager", "ops_lead"]
    assert car.chain()[0].interval == car.chain()[0].wait / 2  # one reminder halfway
    data = old.model_dump()
    data["approval_chain"] = [
        {"role": "ops_lead", "wait": "PT1H"},
        {"role": "manager", "wait": "PT1H"},
    ]
    with pytest.raises(ValidationError, match="approval_chain must go up, never down"):
        Playbook.model_validate(data)
    data["approval_chain"] = [{"role": "manager", "wait": "PT0S"}]
    with pytest.raises(ValidationError, match="greater than 0"):
        Playbook.model_validate(data)


def test_ticket_model_round_trips_through_json() -> None:
    ticket = Ticket.model_validate(raw())
    assert Ticket.model_validate_json(ticket.model_dump_json()) == ticket


def test_ops_messages_are_classified_by_their_step_alone() -> None:
    assert steps.ops_purpose(steps.approval("compensation")) == "approval"
    assert steps.ops_purpose(steps.approval_escalated("compensation", 1)) == "escalation"
    assert steps.ops_purpose(steps.approval_expired("rebook-2")) == "escalation"
    assert steps.ops_purpose(steps.approval_overdue("rebook-2")) == "escalation"
    assert steps.ops_purpose(steps.approval_reminder("compensation", 1, 2)) == "approval"
    assert steps.ops_purpose(steps.escalation(3)) == "escalation"
    assert steps.ops_purpose(steps.sla_warning("approval:compensation")) == "sla_warning"
    assert steps.ops_purpose(steps.sla_breach("resolution:reopen-1")) == "sla_breach"
    for customer_step in (
        steps.ACK,
        steps.ask("claims", 2),
        steps.confirm(2),
        steps.rebook(2),
        steps.compensation_pending("compensation"),
    ):
        assert steps.ops_purpose(steps.on_channel(customer_step, "email")) is None
    assert steps.perk_of(steps.perk("vip")) == "vip"


def test_a_case_stands_at_its_worst_sla_clock_with_the_stored_wire_values() -> None:
    # Running cases hold these values in the MakegoodSla / MakegoodStage search attributes.
    assert [level.value for level in SlaLevel] == ["ok", "warning", "breached"]
    assert Stage.FOLLOW_UP.value == "follow_up" and len(Stage) == 8
    at = datetime(2026, 11, 23, 9, 0)
    clocks: list[SlaClock] = []
    book = SlaBook(Sla(first_contact=None), clocks)
    assert book.level() is SlaLevel.OK  # no clocks at all
    for name in ("remedy_offer", "approval_decision", "resolution"):
        book.start(name, at)  # type: ignore[arg-type]
    book.fire(clocks[0], "warning", at)
    assert book.level() is SlaLevel.WARNING
    book.fire(clocks[2], "breach", at)
    book.fire(clocks[1], "warning", at)
    assert [c.level for c in clocks] == ["warning", "warning", "breached"]
    assert book.level() is SlaLevel.BREACHED and book.level() == "breached"


def test_playbook_amounts_carry_a_currency_and_other_currencies_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "playbooks.toml"
    path.write_text(
        'version = "v1"\n[playbooks.wrong_order]\ntitle = "Coffee"\nremedy = "remake"\n'
    )
    with pytest.raises(PlaybookFileError) as err:
        load_playbooks(path)
    assert err.value.problems == ["currency: Field required"]
    path.write_text(
        'version = "v1"\ncurrency = "USD"\n[playbooks.wrong_order]\ntitle = "Coffee"\n'
        'remedy = "remake"\ncurrency = "EUR"\n'
    )
    with pytest.raises(PlaybookFileError) as err:
        load_playbooks(path)
    assert err.value.problems == [
        "(file): playbooks.wrong_order.currency is EUR, but the file's amounts are in USD"
    ]
    eur = ticket("s5-wrong-drink.json").model_dump(mode="json")
    eur["incident"]["paid"]["currency"] = "EUR"
    with pytest.raises(TicketRejected) as refused:
        parse_ticket(json.dumps(eur), playbooks())
    assert refused.value.problems == [
        "incident.paid.currency: the playbooks' limits and amounts are in USD; a case paid in "
        "EUR needs playbooks in EUR (amounts are never relabelled)"
    ]
