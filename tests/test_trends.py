"""Trends over a period (`makegood.domain.trends`): medians and 95th percentiles, rates, money
per currency and never across currencies, repeat customers and assets; closed cases whose
outcome the index lacks are counted, and kept out of every other figure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from makegood.domain.case import CaseOutcome
from makegood.domain.indexed import IndexedCase
from makegood.domain.money import Money
from makegood.domain.trends import Amount, spread, trends

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def money(amount: str, currency: str = "USD") -> Money:
    return Money(amount=Decimal(amount), currency=currency)


def case(
    n: int,
    *,
    kind: str = "wrong_order",
    customer: str = "cust-a",
    first_contact: float | None = 2.0,
    paid: dict[str, Money] | None = None,
    customer_paid: Money | None = None,
    escalations: int = 0,
    breaches: tuple[str, ...] = (),
    outcome: bool = True,
    cause: str | None = None,
) -> IndexedCase:
    opened = T0 + timedelta(hours=n)
    closed = opened + timedelta(minutes=10 * n)
    paid = paid or {}
    currency = next(iter(paid.values())).currency if paid else "USD"
    total = sum((m.amount for m in paid.values()), Decimal(0))
    return IndexedCase(
        case_id=f"case-T-{n}",
        ticket_id=f"T-{n}",
        kind=kind,
        customer=customer,
        asset=f"asset-{n % 3}",
        opened_at=opened,
        closed_at=closed,
        resolution="resolved",
        outcome=CaseOutcome(
            case_id=f"case-T-{n}",
            kind=kind,
            cause="",
            resolution="resolved",
            remedy_attempts=n,
            remedy_succeeded=True,
            paid_out=Money(amount=total, currency=currency),
            goodwill=money("0", currency),
            escalations=escalations,
            reopened=0,
            approval_needed=False,
            opened_at=opened,
            first_contact_at=None,
            closed_at=closed,
            seconds_to_first_contact=first_contact,
            seconds_to_remedy=60.0 * n,
            seconds_to_close=(closed - opened).total_seconds(),
            sla_breaches=list(breaches),
            paid_by_kind=paid,
            customer_paid=customer_paid,
            cause_code=cause,
        )
        if outcome
        else None,
    )


def test_the_figures_of_a_period() -> None:
    rows = [
        case(
            1,
            first_contact=2.0,
            paid={"refund": money("4.80")},
            customer_paid=money("4.80"),
            cause="order-misheard",
        ),
        case(
            2,
            cause="vehicle-misplaced",
            kind="missing_vehicle",
            customer="cust-b",
            first_contact=4.0,
            paid={"refund": money("10.00"), "reimbursement": money("18.50")},
            customer_paid=money("42.00"),
            escalations=2,
            breaches=("remedy_offer",),
        ),
        case(
            3,
            first_contact=6.0,
            customer_paid=money("10.00"),
            breaches=("remedy_offer",),
            cause="order-misheard",
        ),
        case(4, kind="missing_vehicle", customer="cust-c", outcome=False),
    ]
    found = trends(rows, T0, T0 + timedelta(days=30))
    assert (found.cases, found.without_outcome) == (4, 1)
    assert found.by_kind == {"missing_vehicle": 2, "wrong_order": 2}
    # By the outcomes' cause codes (the case without an outcome is left out).
    assert found.by_cause == {"order-misheard": 2, "vehicle-misplaced": 1}
    assert found.to_first_contact_s.model_dump() == {"cases": 3, "median": 4.0, "p95": 5.8}
    assert found.to_remedy_s.median == 120.0 and found.remedy_attempts.median == 2.0
    assert found.escalation_rate == pytest.approx(1 / 3, abs=1e-4)
    assert found.reopen_rate == 0.0
    assert found.sla_breaches == {"remedy_offer": 2}
    assert found.compensation_by_kind == {
        "refund": [Amount(currency="USD", amount="14.80")],
        "reimbursement": [Amount(currency="USD", amount="18.50")],
    }
    assert found.paid == [Amount(currency="USD", amount="33.30")]
    assert found.customers_paid == [Amount(currency="USD", amount="56.80")]
    assert found.compensation_share == {"USD": round(33.30 / 56.80, 4)}
    assert (found.repeat_customers, found.repeat_assets) == (1, 1)  # cust-a; asset-1 (1 and 4)


def test_a_case_whose_ticket_named_no_cause_is_unclassified() -> None:
    found = trends([case(1, cause="picking-error"), case(2)], T0, T0 + timedelta(days=30))
    assert found.by_cause == {"picking-error": 1, "unclassified": 1}


def test_money_is_never_summed_across_currencies() -> None:
    rows = [
        case(1, paid={"refund": money("5.00")}, customer_paid=money("5.00")),
        case(2, paid={"refund": money("7.00", "EUR")}, customer_paid=money("14.00", "EUR")),
    ]
    found = trends(rows, T0, T0 + timedelta(days=1))
    assert found.compensation_by_kind["refund"] == [
        Amount(currency="EUR", amount="7.00"),
        Amount(currency="USD", amount="5.00"),
    ]
    assert found.compensation_share == {"EUR": 0.5, "USD": 1.0}


def test_an_empty_period_has_no_figures_rather_than_zeros() -> None:
    found = trends([], T0, T0 + timedelta(days=1))
    assert found.cases == 0 and found.escalation_rate is None
    assert found.to_resolution_s.model_dump() == {"cases": 0, "median": None, "p95": None}
    assert spread([7]).model_dump() == {"cases": 1, "median": 7.0, "p95": 7.0}
