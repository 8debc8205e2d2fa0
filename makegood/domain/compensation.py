"""The compensation policy: what a case offers, and what needs a manager's approval."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from decimal import Decimal
from typing import NamedTuple

from makegood.domain import steps
from makegood.domain.actions import ExpenseClaim
from makegood.domain.case import CompensationItem
from makegood.domain.money import Money
from makegood.domain.playbook import Playbook


def plan(
    playbook: Playbook,
    paid: Money,
    *,
    failed_attempts: int,
    refund_requested: bool,
    claims: Iterable[ExpenseClaim],
    price_difference: Money | None,
) -> list[CompensationItem]:
    """Making the customer whole first (refund, expenses), then the goodwill extras."""
    policy = playbook.compensation
    currency = paid.currency
    items: list[CompensationItem] = []
    refund = (
        policy.refund_paid == "always"
        or (policy.refund_paid == "after_failed_attempt" and failed_attempts > 0)
        or refund_requested
    )
    if refund and paid.amount > 0:
        items.append(
            CompensationItem(
                step="refund", kind="refund", description="refund of what you paid", amount=paid
            )
        )
    if policy.reimburse_expenses:
        for claim in claims:
            items.append(
                CompensationItem(
                    step=f"reimburse:{claim.claim_id}",
                    kind="reimbursement",
                    description=f"reimbursement: {claim.description}",
                    amount=claim.amount,
                )
            )
    if price_difference is not None and price_difference.amount > 0:
        waived = min(price_difference.amount, policy.waive_difference_up_to)
        if waived > 0:
            items.append(
                CompensationItem(
                    step="waiver",
                    kind="waiver",
                    description="price difference waived",
                    amount=Money(amount=waived, currency=currency),
                )
            )
    if policy.coupon > 0:
        items.append(
            CompensationItem(
                step="coupon",
                kind="coupon",
                description="coupon for your next order",
                amount=Money(amount=policy.coupon, currency=currency),
            )
        )
    if policy.perk:
        items.append(
            CompensationItem(
                step=f"perk:{policy.perk}",
                kind="perk",
                description=f"{policy.perk.upper()} tier granted",
            )
        )
    return items


def money_total(items: Iterable[CompensationItem], currency: str) -> Money:
    amount = sum((i.amount.amount for i in items if i.amount is not None), Decimal(0))
    return Money(amount=amount, currency=currency)


def within_limit(items: list[CompensationItem], limit: Money) -> list[CompensationItem]:
    """Items in plan order while the running total stays within the frontline limit."""
    kept: list[CompensationItem] = []
    running = Money.zero(limit.currency)
    for item in items:
        if item.amount is None:
            kept.append(item)
            continue
        if running + item.amount <= limit:
            running = running + item.amount
            kept.append(item)
    return kept


# Money that can be paid in two parts: what is owed back. Goodwill (a coupon, a waived price
# difference) is granted whole or waits whole.
SPLITTABLE = ("refund", "reimbursement")


class Split(NamedTuple):
    items: list[CompensationItem]  # all of them in plan order, a split item's parts together
    now: list[CompensationItem]
    rest: list[CompensationItem]


def split(
    items: list[CompensationItem],
    headroom: Money,
    held: Collection[str] = (),
    *,
    part_step: Callable[[str], str] = steps.in_limit_part,
    part_said: str = "paid at once",
) -> Split:
    """What the frontline pays at once and what waits for an approval, in plan order.

    Items fill the headroom in plan order; the first refund or reimbursement that no longer
    fits is split in two: the part that fits is paid now under its own step (a new
    idempotency key), the rest keeps the item's step. Later items are paid now if they
    still fit (a perk, with no amount, always does), else wait whole. So what is paid now is
    the whole headroom where the items allow it: a 42.00 refund against a 21.00 limit pays
    21.00 at once. Items whose step is `held` (a claim the receipt index holds for a manager)
    always wait, whole.
    """
    ordered: list[CompensationItem] = []
    now: list[CompensationItem] = []
    rest: list[CompensationItem] = []
    room = headroom
    for item in items:
        if item.step in held:
            ordered.append(item)
            rest.append(item)
            continue
        if item.amount is None or item.amount <= room:
            ordered.append(item)
            now.append(item)
            if item.amount is not None:
                room = room - item.amount
            continue
        if item.kind in SPLITTABLE and room.amount > 0:
            part = item.model_copy(
                update={
                    "step": part_step(item.step),
                    "description": f"{item.description} ({part_said})",
                    "amount": room,
                }
            )
            ordered.append(part)
            now.append(part)
            item.amount = item.amount - room
            item.description = f"{item.description} (the rest)"
            room = Money.zero(room.currency)
        ordered.append(item)
        rest.append(item)
    return Split(ordered, now, rest)


def settled_and_not(
    items: Iterable[CompensationItem], claims: Iterable[ExpenseClaim]
) -> tuple[list[str], list[str]]:
    """What a closing case has paid (lines), and what it will not pay: items not yet paid and
    claims the compensation never reached. Failed and declined items are told elsewhere."""
    items = list(items)

    def line(description: str, amount: Money | None) -> str:
        return f"{description}: {amount}" if amount else description

    paid = [line(i.description, i.amount) for i in items if i.state == "paid"]
    unpaid = [
        line(i.description, i.amount)
        for i in items
        if i.state in ("planned", "pending", "approved")
    ]
    planned = {i.step for i in items}
    unpaid += [
        line(f"reimbursement: {c.description}", c.amount)
        for c in claims
        if f"reimburse:{c.claim_id}" not in planned
    ]
    return paid, unpaid
