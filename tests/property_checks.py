"""The invariants the property-based suite holds every case to, at every quiet point (nothing in
flight), whatever was generated (listed in the README under "Tests"):

1. Waiting or closed. A running case waits on a named thing with a deadline that has not yet
   passed (the customer's answer to an open question, a manager's decision, the follow-up, the
   telephony provider's word on a call-back); a finished one is closed with a named resolution
   (resolved, unresolved, unreachable, cancelled, handed_off) and says so in its status.
2. No money beyond policy without an approval. What the case paid is within its discretion
   limit plus what managers approved, and every approval of money was decided by a manager who
   did not open the case, claim expenses in it or own it when deciding.
3. Once per step. No provider effect (a payment, a message, a booking...) happened twice for
   one idempotency key, no key was reused for a different request, and every payment the
   payment provider made is one the case records, for the amount it records.
4. The status query answers (checked by every call that reads the status).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, get_args

from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from makegood.domain import calls, ids
from makegood.domain.case import CaseStatus, Resolution, Stage
from makegood.domain.playbook import PlaybookSet
from makegood.domain.ticket import IncidentKind
from tests.fakes import Fakes
from tests.property_plans import Plan

RESOLUTIONS = get_args(Resolution)  # every named end, handed_off (a person took over) too
# Real time passes on the server's clock between the quiet point and the check.
LATE = timedelta(seconds=5)


async def check_invariants(
    env: WorkflowEnvironment,
    handle: WorkflowHandle[Any, Any],
    status: CaseStatus,
    fakes: Fakes,
    plan: Plan,
    playbooks: PlaybookSet,
) -> None:
    described = await handle.describe()
    if described.status == WorkflowExecutionStatus.RUNNING:
        now = await env.get_current_time()
        waits = waiting_on(status, now, playbooks)
        assert waits, f"the case waits on nothing named (stage {status.stage.value})"
        for what, deadline in waits:
            assert deadline >= now - LATE, f"{what}: its deadline {deadline} passed (now {now})"
    else:
        closed(status, described.status)
    within_policy(status, plan)
    once_per_step(fakes, status)


def waiting_on(
    status: CaseStatus, now: datetime, playbooks: PlaybookSet
) -> list[tuple[str, datetime]]:
    """What a running case waits for, each with its deadline."""
    assert status.stage not in (Stage.DOCUMENT, Stage.CLOSED), f"running in {status.stage}"
    waits: list[tuple[str, datetime]] = []
    if status.question is not None:
        waits.append((f"the customer's answer to {status.question.id}", status.question.deadline))
    if status.approval is not None:
        waits.append((f"a manager's decision on {status.approval.id}", status.approval.deadline))
    if status.follow_up_at is not None:
        waits.append(("the follow-up", status.follow_up_at))
    call = status.callback
    if call is not None and call.state in ("scheduling", "waiting") and call.attempts:
        settings = playbooks.for_kind(IncidentKind(status.kind)).callbacks
        last = call.attempts[-1]
        if call.state == "waiting":
            # The call-back waits from when it booked the call (or the call's time, if later)
            # for the status timeout: booked right after the previous call ended, or after the
            # apology for the first, unless booking had to be retried (then: unknown, now).
            before = call.attempts[-2].ended_at if len(call.attempts) > 1 else None
            booked = before or status.first_contact_at or status.opened_at
            if last.schedule_failures:
                booked = now - LATE
            due = max(last.due, booked) + settings.status_timeout
            waits.append((f"the telephony provider's word on call {last.number}", due))
        elif last.schedule_failures:  # backing off before it tries to book the call again
            backoff = settings.schedule_backoff.maximum
            waits.append((f"booking call {last.number} again", now + backoff))
    return waits


def closed(status: CaseStatus, state: WorkflowExecutionStatus | None) -> None:
    name = state.name if state else "unknown"
    assert state == WorkflowExecutionStatus.COMPLETED, f"the case ended {name}, not closed"
    assert status.stage == Stage.CLOSED, f"completed in stage {status.stage.value}"
    assert status.resolution in RESOLUTIONS, f"closed without a named state: {status.resolution}"
    assert status.closed_at is not None, "closed without a closing time"
    assert status.question is None and status.approval is None, "closed with a wait still open"
    if status.resolution == "cancelled":
        assert status.cancelled, "cancelled without the reason and who"


def within_policy(status: CaseStatus, plan: Plan) -> None:
    """Paid <= discretion limit + approved amounts; approvals of money by a second manager."""
    limit = status.discretion_limit
    paid = sum(
        (i.amount.amount for i in status.compensation if i.state == "paid" and i.amount),
        Decimal(0),
    )
    approved = [d for d in status.decisions if d.approved and d.amount is not None]
    allowed = limit.amount + sum((d.amount.amount for d in approved if d.amount), Decimal(0))
    assert paid <= allowed, (
        f"paid {paid} {limit.currency}: more than the limit {limit} plus approvals "
        f"{[str(d.amount) for d in approved]}"
    )
    opener = str(plan.opened_by) if plan.opened_by else None
    claimants = {str(c.by) for c in status.claims}
    owner_when = owners_at_decisions(status)
    for d in approved:
        assert d.by.startswith("manager:"), f"{d.request_id} approved by {d.by}, not a manager"
        assert d.by != opener, f"{d.request_id}: {d.by} approved money on a case they opened"
        assert d.by not in claimants, f"{d.request_id}: {d.by} approved their own claims"
        assert owner_when.get((d.request_id, d.by)) != d.by, (
            f"{d.request_id}: {d.by} approved money on a case they owned"
        )


def owners_at_decisions(status: CaseStatus) -> dict[tuple[str, str], str | None]:
    """(request, decider) -> who owned the case when that decision was taken (events order)."""
    owner: str | None = None
    found: dict[tuple[str, str], str | None] = {}
    for e in status.events:
        if e.kind == "assigned":
            owner = e.detail.removeprefix("owner is now ")
        elif e.kind == "approval" and e.by is not None:
            found[(e.detail.split(" ")[0], e.by)] = owner
    return found


def once_per_step(fakes: Fakes, status: CaseStatus) -> None:
    case = status.case_id
    mine = [c for c in fakes.calls if ids.case_of(c.workflow_id) == case]
    done = Counter((c.name, c.key) for c in mine if c.key is not None and c.outcome == "done")
    twice = [f"{name} {key}" for (name, key), n in done.items() if n > 1]
    assert not twice, f"done more than once: {twice}"
    reused = [c for c in mine if c.error and "already used for a different request" in c.error]
    assert not reused, f"idempotency keys reused for another request: {[c.key for c in reused]}"
    effects = Counter(
        (e.name, e.key) for e in fakes.effects if e.key and ids.case_of(e.key) == case
    )
    assert all(n == 1 for n in effects.values()), f"effects repeated: {effects}"

    items = {i.step: i for i in status.compensation}
    for payment in fakes.done(calls.MAKE_PAYMENT, workflow_id=case):
        item = items.get(payment.step or "")
        assert item is not None, f"paid {payment.step}, which the case does not record"
        assert item.amount == payment.request.amount, f"{item.step}: {item.amount} recorded"
        assert item.receipt == payment.result.payment_id, f"{item.step}: paid, no receipt kept"
        assert item.state == "paid" or item.settlement == "failed", (
            f"{item.step}: paid but recorded as {item.state}"
        )
    paid_steps = {p.step for p in fakes.done(calls.MAKE_PAYMENT, workflow_id=case)}
    for item in status.compensation:
        if item.state == "paid" and item.kind in ("refund", "reimbursement", "coupon"):
            assert item.step in paid_steps, f"{item.step} recorded as paid, never paid"
