"""The written confirmation, checked against the history: every line it lists must be something
the history shows was carried out, and everything carried out for the customer must be listed.

The check works from what each completed activity did (its request and result, by its spec in
`domain/calls.py`), not from the workflow's bookkeeping, so a confirmation that promises a
payment that never happened, or leaves one out, is caught even if the case's own record agrees
with it. A line matches a deed when it names the deed's identifiers (a payment's description and
amount, a booking's vehicle and class, a released booking's id, ...): wording may change, the
identifiers may not. Deeds and lines are paired one to one (a maximum matching), so two taxis of
different amounts or two horns of the same car are each accounted for.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from makegood.domain import calls, steps
from makegood.domain.money import Money


@dataclass
class Deed:
    """Something the history shows was done for the customer."""

    at: datetime
    event_id: int
    what: str  # for the report: how the timeline describes it
    names: tuple[str, ...]  # every one must appear in the confirmation's line
    amount: Money | None = None  # counted in the total paid or credited
    required: bool = True  # False: may be listed (a hand-off, a completed call), need not be
    workflow_id: str = ""


@dataclass
class Confirmation:
    at: datetime
    event_id: int
    body: str
    done: list[str] = field(default_factory=list)  # the "what we did" list, without the "- "
    workflow_id: str = ""


def _before(deed: Deed, sent: Confirmation) -> bool:
    """Within one history the event order decides; across the case's histories (a call-back's)
    the time does."""
    if deed.workflow_id == sent.workflow_id:
        return (deed.at, deed.event_id) < (sent.at, sent.event_id)
    return deed.at <= sent.at


def deeds_of(name: str, req: Any, res: Any, at: datetime, event_id: int, what: str) -> list[Deed]:
    """The deeds one completed activity stands for (none for messages, look-ups, records)."""

    def deed(*names: str, amount: Money | None = None, required: bool = True) -> list[Deed]:
        return [Deed(at, event_id, what, tuple(n for n in names if n), amount, required)]

    if name == calls.MAKE_PAYMENT.name:
        return deed(req.memo, str(req.amount), amount=req.amount)
    if name == calls.GRANT_PERK.name:
        return deed(req.perk.upper())
    if name == calls.REBOOK_VEHICLE.name:
        return deed(res.vehicle, res.vehicle_class or "")
    if name == calls.RELEASE_BOOKING.name:
        return deed(req.booking)
    if name == calls.LOCATE_VEHICLE.name:
        return deed(req.vehicle) if res.honked else []  # a silent horn is not claimed
    if name == calls.CREATE_RETURN.name:
        return deed(res.label_id)
    if name == calls.SHIP_ITEM.name:
        return deed(req.sku, req.order)
    if name == calls.PLACE_SUBSTITUTE.name:
        waived = req.waived if req.waived.amount else None
        return deed(req.sku, str(waived) if waived else "", amount=waived)
    if name == calls.REMAKE_ORDER.name:
        return deed(req.order)
    if name == calls.BOOK_REPAIR.name:
        return deed(req.asset)
    if name == calls.REPLACE_ITEM.name:
        return deed(res.sku)
    return []


def call_attempt(step: str) -> int:
    """Which call of a call-back a booking's step (`steps.call(n)`) is; 0 if not one."""
    number = step.rsplit(":", 1)[-1]
    return int(number) if number.isdigit() else 0


def is_confirmation(step: str) -> bool:
    return step.split(":")[0] == steps.confirm(1)


def listed(body: str) -> list[str]:
    """The first list of the letter: what was done ("- nothing yet" when empty)."""
    items: list[str] = []
    for line in body.splitlines():
        if line.startswith("- "):
            items.append(line[2:])
        elif items:
            break
    return [] if items == ["nothing yet"] else items


def _pair(lines: list[str], deeds: list[Deed]) -> tuple[dict[int, int], list[int]]:
    """A maximum one-to-one matching of lines to the deeds they name (Kuhn's algorithm)."""
    fits = [
        [d for d, deed in enumerate(deeds) if all(n in line for n in deed.names)] for line in lines
    ]
    owner: dict[int, int] = {}  # deed -> line

    def claim(line: int, seen: set[int]) -> bool:
        for d in fits[line]:
            if d not in seen:
                seen.add(d)
                if d not in owner or claim(owner[d], seen):
                    owner[d] = line
                    return True
        return False

    unmatched = [i for i in range(len(lines)) if not claim(i, set())]
    return owner, unmatched


def check(confirmation: Confirmation, deeds: Iterable[Deed]) -> list[str]:
    """The problems with one confirmation, given every deed done before it was sent."""
    before = [d for d in deeds if _before(d, confirmation)]
    required = [d for d in before if d.required]
    optional = [d for d in before if not d.required]
    lines = confirmation.done
    owner, unmatched = _pair(lines, required)
    # Lines no required deed accounts for may still name an optional one (a hand-off).
    _, still = _pair([lines[i] for i in unmatched], optional)
    problems = [f"listed but not done: {lines[unmatched[i]]}" for i in still]
    problems += [f"done but not listed: {d.what}" for i, d in enumerate(required) if i not in owner]
    paid = [d.amount for d in before if d.amount is not None]
    if paid:
        total = Money(amount=sum((m.amount for m in paid), Decimal(0)), currency=paid[0].currency)
        if str(total) not in confirmation.body:
            problems.append(f"the total paid or credited, {total}, is not stated")
    return problems


def report(confirmation: Confirmation, problems: list[str]) -> str:
    n = len(confirmation.done)
    if not problems:
        return (
            f"confirmation checked: its {n} line(s) match what the history shows was done, "
            "and everything done is listed"
        )
    return f"confirmation check found {len(problems)} problem(s) in its {n} line(s)"
