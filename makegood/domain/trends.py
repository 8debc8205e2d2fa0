"""Trends over a period, for ops leads: from the case index's rows and the outcomes they keep
(never by scanning histories). Pure: the API reads the rows, the CLI and the page render this.

Durations are in seconds, as median and 95th percentile of the cases that have them; rates are
shares of the period's cases; money is summed per currency, never across currencies.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, Field

from makegood.domain.indexed import IndexedCase

UNCLASSIFIED = "unclassified"  # a case whose ticket named no cause code


class Spread(BaseModel):
    """Median and 95th percentile of the cases that have the figure (`cases` of them)."""

    cases: int = 0
    median: float | None = None
    p95: float | None = None


class Amount(BaseModel):
    """A sum in one currency: a string, as money always is on the wire."""

    currency: str
    amount: str


class Trends(BaseModel):
    start: datetime
    end: datetime
    cases: int = Field(description="cases closed in the period")
    without_outcome: int = Field(
        description="of them, cases whose outcome the index does not have (closed before it kept "
        "outcomes): counted here and by kind, left out of every other figure"
    )
    by_kind: dict[str, int]
    by_resolution: dict[str, int]
    by_cause: dict[str, int] = Field(
        default={},
        description="cases with an outcome, by the ticket's cause code; `unclassified` without",
    )
    to_first_contact_s: Spread
    to_remedy_s: Spread
    to_resolution_s: Spread
    remedy_attempts: Spread
    escalation_rate: float | None = Field(description="share of cases escalated at least once")
    reopen_rate: float | None = Field(description="share of cases whose remedy was re-opened")
    unconfirmed_rate: float | None = Field(
        description="share of cases where a remedy hinged on an answer nobody gave"
    )
    sla_breaches: dict[str, int] = Field(description="breached SLA clocks, by clock")
    compensation_by_kind: dict[str, list[Amount]]
    paid: list[Amount] = Field(description="all compensation paid")
    customers_paid: list[Amount] = Field(description="what those customers had paid")
    compensation_share: dict[str, float] = Field(
        description="compensation as a share of what the customers had paid, per currency"
    )
    repeat_customers: int = Field(description="customers with more than one case in the period")
    repeat_assets: int = Field(description="assets with more than one case in the period")


def spread(values: Iterable[float | int | None]) -> Spread:
    found = sorted(float(v) for v in values if v is not None)
    if not found:
        return Spread()
    p95 = found[0] if len(found) == 1 else statistics.quantiles(found, n=20, method="inclusive")[18]
    return Spread(cases=len(found), median=statistics.median(found), p95=round(p95, 3))


def _sums(pairs: Iterable[tuple[str, Decimal]]) -> list[Amount]:
    total: dict[str, Decimal] = {}
    for currency, amount in pairs:
        total[currency] = total.get(currency, Decimal(0)) + amount
    return [Amount(currency=c, amount=str(a)) for c, a in sorted(total.items())]


def _rate(count: int, of: int) -> float | None:
    return round(count / of, 4) if of else None


def trends(rows: Sequence[IndexedCase], start: datetime, end: datetime) -> Trends:
    """The figures of the cases in `rows` (those closed from `start` up to `end`)."""
    known = [r.outcome for r in rows if r.outcome is not None]
    n = len(known)
    by_kind: dict[str, list[tuple[str, Decimal]]] = {}
    for outcome in known:
        for kind, money in outcome.paid_by_kind.items():
            by_kind.setdefault(kind, []).append((money.currency, money.amount))
    paid = _sums((o.paid_out.currency, o.paid_out.amount) for o in known)
    customers = _sums(
        (o.customer_paid.currency, o.customer_paid.amount) for o in known if o.customer_paid
    )
    had = {a.currency: Decimal(a.amount) for a in customers}
    share = {
        a.currency: round(float(Decimal(a.amount) / had[a.currency]), 4)
        for a in paid
        if had.get(a.currency)
    }
    customers_seen = Counter(r.customer for r in rows)
    assets_seen = Counter(r.asset for r in rows)
    return Trends(
        start=start,
        end=end,
        cases=len(rows),
        without_outcome=len(rows) - n,
        by_kind=dict(sorted(Counter(r.kind for r in rows).items())),
        by_resolution=dict(sorted(Counter(r.resolution or "unknown" for r in rows).items())),
        by_cause=dict(sorted(Counter(o.cause_code or UNCLASSIFIED for o in known).items())),
        to_first_contact_s=spread(o.seconds_to_first_contact for o in known),
        to_remedy_s=spread(o.seconds_to_remedy for o in known),
        to_resolution_s=spread(o.seconds_to_close for o in known),
        remedy_attempts=spread(o.remedy_attempts for o in known),
        escalation_rate=_rate(sum(o.escalations > 0 for o in known), n),
        reopen_rate=_rate(sum(o.reopened > 0 for o in known), n),
        unconfirmed_rate=_rate(sum(o.remedy == "unconfirmed" for o in known), n),
        sla_breaches=dict(sorted(Counter(b for o in known for b in o.sla_breaches).items())),
        compensation_by_kind={k: _sums(v) for k, v in sorted(by_kind.items())},
        paid=paid,
        customers_paid=customers,
        compensation_share=share,
        repeat_customers=sum(1 for c in customers_seen.values() if c > 1),
        repeat_assets=sum(1 for c in assets_seen.values() if c > 1),
    )
