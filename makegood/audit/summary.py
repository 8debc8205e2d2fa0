"""The summary an auditor reads first: how the case ended, what was paid by kind, who approved
what and when, whether each written confirmation matches what was done (`audit.crosscheck`),
and how long first contact and resolution took. Worked out from the timeline's
own lines (so it can never say more than the history does), never from the case's status."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal

from makegood.audit.timeline import Line


def _span(start: datetime, end: datetime) -> str:
    return str(timedelta(seconds=round((end - start).total_seconds())))


def summarize(lines: list[Line]) -> list[str]:
    """One sentence per fact, in the order an auditor checks them."""
    report = next((line for line in lines if line.kind == "report"), None)
    closed = next((line for line in reversed(lines) if line.kind == "closed"), None)
    out = []
    if closed is not None:
        ending = closed.text.split(":")[0]  # "closed resolved"
        out.append(f"Outcome: {ending.removeprefix('closed ')}, at {closed.at:%Y-%m-%d %H:%M:%S}")
    else:
        out.append("Outcome: still running")

    paid: dict[str, Decimal] = defaultdict(Decimal)
    currency = ""
    for line in lines:
        if line.kind == "payment" and line.amount:
            amount, currency = line.amount.split()
            paid[line.text.split()[0]] += Decimal(amount)
    if paid:
        parts = ", ".join(f"{kind} {amount} {currency}" for kind, amount in paid.items())
        out.append(f"Paid: {sum(paid.values())} {currency} in all ({parts})")
    else:
        out.append("Paid: nothing")

    decisions = [line for line in lines if line.kind == "approval" and line.by]
    for line in decisions:
        out.append(f"Decided: {line.text} by {line.by} at {line.at:%Y-%m-%d %H:%M:%S}")
    if not decisions:
        out.append("Decided: no approval was needed or given")

    checks = [line for line in lines if line.kind == "check"]
    if not checks:
        out.append("Confirmation: no written confirmation was sent")
    for line in checks:
        problems = (line.said or "").splitlines()
        out.append(
            f"Confirmation of {line.at:%Y-%m-%d %H:%M:%S}: "
            + ("; ".join(problems) if problems else "matches what was done, line by line")
        )

    if report is not None:
        contact = next((line for line in lines if line.kind == "message"), None)
        out.append(
            f"First contact: {_span(report.at, contact.at)} after the report"
            if contact
            else "First contact: none yet"
        )
        if closed is not None:
            out.append(f"Resolution: {_span(report.at, closed.at)} after the report")
    return out
