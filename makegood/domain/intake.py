"""What a case needs of its ticket before anything is done: one check, two places.

The edge (`makegood.cases.check_ticket`) refuses a ticket with these problems, field by field,
before anything starts. The workflow runs the same check first thing, so that a case started
some other way (straight through Temporal, or by an older API) with such a ticket is handed
to a person at once instead of failing on every workflow task for good.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from makegood.domain.money import MAX_AMOUNT
from makegood.domain.playbook import Playbook
from makegood.domain.ticket import Ticket


def worst_case_total(playbook: Playbook, paid: Decimal) -> Decimal:
    """The most a case could pay out under its playbook: a full refund, every claim at its
    maximum, the whole waiver, the coupon, and the goodwill of every re-opening."""
    policy = playbook.compensation
    claims = policy.max_claims * policy.max_claim if policy.reimburse_expenses else Decimal(0)
    return (
        paid
        + claims
        + policy.waive_difference_up_to
        + policy.coupon
        + policy.reopen_goodwill * playbook.max_reopens
    )


def _naive(value: datetime | None) -> bool:
    return value is not None and (value.tzinfo is None or value.utcoffset() is None)


def ticket_problems(ticket: Ticket, playbook: Playbook) -> list[str]:
    """`field: reason` for everything about this ticket the case could not carry to an end."""
    problems = []
    inc = ticket.incident
    for name, value in (
        ("reported_at", ticket.reported_at),
        ("incident.occurred_at", inc.occurred_at),
    ):
        if _naive(value):
            problems.append(
                f"{name}: needs a time zone, e.g. 2026-12-01T09:30:00Z or "
                "2026-12-01T10:30:00+01:00 (a time without one would be a guess)"
            )
    if playbook.currency is not None and inc.paid.currency != playbook.currency:
        problems.append(
            f"incident.paid.currency: the playbooks' limits and amounts are in "
            f"{playbook.currency}; a case paid in {inc.paid.currency} needs playbooks in "
            f"{inc.paid.currency} (amounts are never relabelled)"
        )
    worst = worst_case_total(playbook, inc.paid.amount)
    if worst > MAX_AMOUNT:
        problems.append(
            f"incident.paid.amount: {inc.paid} could add up to {worst} {inc.paid.currency} of "
            f"compensation under the {playbook.kind.value} playbook, above the maximum of "
            f"{MAX_AMOUNT} any case may pay: a person must handle it"
        )
    return problems
