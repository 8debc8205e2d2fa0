"""A case's status as an operator reads it in a terminal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from makegood.domain import roles
from makegood.domain.actions import NEEDS_VALUE
from makegood.domain.case import CaseStatus, SlaLevel


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC") if at else "-"


def _span(d: timedelta) -> str:
    seconds = int(d.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s"


def _approval(s: CaseStatus) -> list[str]:
    """The pending approval: who has it, until when, what then, and the money it holds."""
    a = s.approval
    assert a is not None
    who = roles.role_word(a.role or "manager")
    lines = [
        f"WAITING FOR {who.upper()}: {a.id}" + (f" ({a.amount} pending)" if a.amount else ""),
        f"  {a.reason}",
        f"  until {_when(a.deadline)}"
        + (f", escalated {a.level}x" if a.level else "")
        + (f", reminded {a.reminded}x" if a.reminded else "")
        + (f"; then {a.then}" if a.then else ""),
    ]
    if a.paid_meanwhile and a.paid_meanwhile.amount:
        lines.append(f"  paid at once within the frontline limit: {a.paid_meanwhile}")
    if a.decide_by:
        told = ", as the customer was told" if a.amount else ""
        lines.append(f"  the chain's last level runs out {_when(a.decide_by)}{told}")
    above = " or above" if a.role else ""
    lines.append(
        f"  makegood approve {s.case_id} {a.id} [--reject --note <why>]     "
        f"(with the token of {who}{above})"
    )
    return lines


def render_status(status: CaseStatus, *, events: int = 12) -> str:
    s = status
    lines = [
        f"{s.case_id}  [{s.kind}]  stage: {s.stage.value}"
        + (f"  resolution: {s.resolution}" if s.resolution else ""),
        f"  ticket {s.ticket_id}, customer {s.customer_id}, playbooks {s.playbook_version}",
        f"  opened {_when(s.opened_at)}, first contact {_when(s.first_contact_at)}"
        + (f", closed {_when(s.closed_at)}" if s.closed_at else ""),
        f"  discretion limit {s.discretion_limit}"
        + (f", re-opened {s.reopened}x" if s.reopened else "")
        + f", owner {s.owner or 'unassigned'}",
    ]
    if s.archived:  # Temporal no longer has the case (past the namespace's retention)
        lines.insert(1, f"  ({s.archived})")
    if s.cancelled:
        lines.append(f"  CANCELLED: {s.cancelled}")
    if s.question:
        q = s.question
        lines += [
            "",
            f"WAITING FOR THE CUSTOMER: {q.id}",
            f"  {q.prompt}",
            f"  answer with one of: {', '.join(q.choices)}",
            f"  until {_when(q.deadline)}, then: {q.on_timeout}",
            f"  makegood answer {s.case_id} {q.id} {q.choices[0]}"
            + (f" --value <{NEEDS_VALUE[q.choices[0]]}>" if q.choices[0] in NEEDS_VALUE else ""),
        ]
    if s.approval:
        lines += ["", *_approval(s)]
    if s.follow_up_at:
        lines += ["", f"NEXT: we ask the customer how things are on {_when(s.follow_up_at)}"]
    if s.related:
        lines += ["", "Earlier cases (the customer's own, or about the same asset):"]
        lines += [
            f"  {c.case_id:<28} {c.kind:<15} {_when(c.opened_at)}  {c.resolution or c.state}"
            + ("" if c.same_customer else "  ANOTHER CUSTOMER'S: never shown to this one")
            for c in s.related
        ]
    if s.bookings:
        lines += ["", "Bookings:"]
        lines += [
            f"  {b.id:<20} {b.vehicle:<10} {b.vehicle_class or '':<10} {b.status:<9} {b.origin}"
            for b in s.bookings
        ]
    if s.callback:
        cb = s.callback
        lines += ["", f"Call-back: {cb.state}"]
        for call in cb.attempts:
            tried = (
                f", {len(call.schedule_failures)} failed scheduling attempt(s): "
                f"{call.schedule_failures[-1]}"
                if call.schedule_failures
                else ""
            )
            lines.append(
                f"  call {call.number}  due {_when(call.due)}  {call.call_id or '-':<22} "
                f"{call.outcome}{tried}"
            )
        if cb.state == "waiting" and cb.attempts and cb.attempts[-1].call_id:
            lines.append(
                f"  makegood call-status {s.case_id} {cb.attempts[-1].call_id} "
                "completed|dropped|no_answer"
            )
        lines += [f"  ignored: {i}" for i in cb.ignored_callbacks]
    if s.claims:
        lines += ["", "Expense claims:"]
        lines += [
            f"  {c.claim_id:<14} {c.amount!s:<14} {c.description} (by {c.by})" for c in s.claims
        ]
        for check in s.claim_checks:  # what the receipt index found: for the approver
            held = "HELD for a manager: " if check.held else ""
            lines += [f"    {held}{note}" for note in check.notes()]
    if s.compensation:
        lines += ["", "Compensation:"]
        for item in s.compensation:
            amount = str(item.amount) if item.amount else ""
            extra = f"  ({item.failure})" if item.failure else ""
            lines.append(
                f"  {item.kind:<14} {amount:<14} {item.state:<9} {item.description}{extra}"
            )
    if s.slas:
        now = datetime.now(UTC)
        lines += ["", "SLA clocks:"]
        for c in s.slas:
            elapsed = c.elapsed_at(now if c.stopped_at is None else c.stopped_at)
            level = "" if c.level == SlaLevel.OK else f"  {c.level.value.upper()}"
            lines.append(
                f"  {c.label:<28} {_span(elapsed):>9} of {_span(c.target):<9} {c.state}{level}"
            )
    if s.decisions:
        lines += ["", "Approvals decided:"]
        lines += [
            f"  {_when(d.at)}  {d.request_id}"
            + (f" ({d.amount})" if d.amount else "")
            + f" {'approved' if d.approved else 'rejected'} by {d.by}"
            + (f"; case opened by {d.opened_by}" if d.opened_by else "")
            for d in s.decisions
        ]
    if s.escalations:
        lines += ["", "Escalations:"]
        lines += [f"  {_when(e.at)}  to {e.to}: {e.reason}" for e in s.escalations]
    if s.unconfirmed:
        lines += ["", "UNCONFIRMED (nobody answered on any channel; nothing was assumed):"]
        lines += [f"  {u}" for u in s.unconfirmed]
    if s.notes:
        lines += ["", "Notes:"] + [f"  {n}" for n in s.notes]
    shown = s.events if events <= 0 else s.events[-events:]
    if shown:
        hidden = len(s.events) - len(shown)
        lines += [
            "",
            "Events"
            + (f" (latest {len(shown)} of {len(s.events)}; --events 0 for all)" if hidden else "")
            + ":",
        ]
        for e in shown:
            amount = f"  [{e.amount}]" if e.amount else ""
            by = f"  by {e.by}" if e.by else ""
            lines.append(f"  {_when(e.at)}  {e.kind:<18} {e.detail}{amount}{by}")
    return "\n".join(lines)
