"""Oversight: the managers' approvals and the SLA clocks that watch every case.

An approval goes along the playbook's chain of roles (a manager, then an ops lead...), each
level with its wait and reminders; after the last level it keeps waiting and reminding, or
declines only where the playbook says so. A decline is otherwise a person's, with a note.
SLA clocks warn the case's owner at `warn_at` of a target and escalate at 100 %.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from types import MappingProxyType

from temporalio import workflow
from temporalio.common import SearchAttributeKey

with workflow.unsafe.imports_passed_through():
    from makegood.domain import contract, roles, steps
    from makegood.domain.actions import ApprovalDecision
    from makegood.domain.case import ApprovalRequest, SlaLevel
    from makegood.domain.money import Money
    from makegood.domain.playbook import ApprovalLevel

from makegood.workflows.case import Case

# Added while cases were running: approvals asked before it replay as they ran.
CHAIN_PATCH = "approval-chain"
MIN_WAIT = timedelta(seconds=1)  # a reminder that took its whole interval to send
SLA_KEY = SearchAttributeKey.for_keyword(contract.SA_SLA)
SLA_LABELS: Mapping[str, str] = MappingProxyType(
    {
        "first_contact": "first contact",
        "remedy_offer": "remedy offered",
        "approval_decision": "approval decided",
        "resolution": "resolution",
    }
)


class Approvals:
    def __init__(self, case: Case) -> None:
        self.case = case
        self.decisions: dict[str, ApprovalDecision] = {}  # request id -> the decision taken

    def take(self, decision: ApprovalDecision) -> None:
        self.decisions[decision.request_id] = decision

    def refusal(self, decision: ApprovalDecision) -> str | None:
        """Why the pending approval cannot take this decision, or None: a decline needs a
        note, and an escalated approval is decided by its level's role or someone above."""
        pending = self.case.status.approval
        if pending is None:
            return "nothing is waiting for approval"
        if not decision.approved and not (decision.note or "").strip():
            return (
                f"declining {pending.id} needs a note saying why: it is kept with the decision "
                "and, where money is declined, told to the customer as the reason"
            )
        if pending.role is not None and (why := roles.decider_refusal(decision.by, pending.role)):
            return why
        if decision.amount is not None:
            return _partial_refusal(decision, pending)
        return None

    def granted(self, rid: str) -> Money | None:
        """What a partial approval of `rid` granted, or None (approved or declined whole)."""
        decision = self.decisions.get(rid)
        return decision.amount if decision is not None and decision.approved else None

    def declined_because(self, rid: str) -> str:
        """Why an approval was declined, as the customer is told: the decider's note, or the
        playbook's rule when nobody decided."""
        decision = self.decisions.get(rid)
        if decision is not None and decision.note:
            return decision.note
        total = sum((level.wait for level in self.case.playbook.chain()), timedelta(0))
        return f"nobody decided it within {total}, and our rules then decline it"

    async def request(
        self,
        rid: str,
        reason: str,
        amount: Money | None = None,
        *,
        paid_meanwhile: Money | None = None,
        on_asked: Callable[[ApprovalRequest], Awaitable[None]] | None = None,
    ) -> bool:
        """Ask the playbook's approval chain; True if approved. `on_asked` runs once the first
        role has been asked, before the wait (the in-limit part is paid and the customer told
        there). Cases opened before the chain existed go on as they began."""
        if not workflow.patched(CHAIN_PATCH):
            return await self._request_before_chain(rid, reason, amount)
        case = self.case
        chain = case.playbook.chain()
        now = workflow.now()
        total = sum((level.wait for level in chain), timedelta(0))
        pending = ApprovalRequest(
            id=rid,
            reason=reason,
            amount=amount,
            asked_at=now,
            deadline=now + chain[0].wait,
            role=chain[0].role,
            decide_by=now + total,
            paid_meanwhile=paid_meanwhile,
        )
        case.status.approval = pending
        case.event("approval_requested", f"{rid}: {reason} (asked: {chain[0].role})", amount=amount)
        case.sla.start("approval_decision", now, label=f"approval:{rid}")
        decided = await self._chain(rid, chain, pending, on_asked)
        case.status.approval = None
        case.sla.stop(f"approval:{rid}", workflow.now())
        return decided and self.decisions[rid].approved

    async def _chain(
        self,
        rid: str,
        chain: list[ApprovalLevel],
        pending: ApprovalRequest,
        on_asked: Callable[[ApprovalRequest], Awaitable[None]] | None,
    ) -> bool:
        """Level by level, reminding each role; False if the chain ran out and the playbook
        declines then. With `on_no_decision = "wait"` it never runs out: the last role is
        reminded until someone decides (or the case is cancelled)."""
        case = self.case
        for n, level in enumerate(chain):
            pending.level, pending.role, pending.reminded = n, level.role, 0
            pending.then = self._then(chain, n)
            if n == 0:
                await self._ask(rid, pending, steps.approval(rid), "Approval needed")
                if on_asked is not None:
                    await on_asked(pending)
            else:
                await case.escalate(
                    f"approval {rid} undecided after {chain[n - 1].wait}; escalated to "
                    f"{roles.role_word(level.role)} (level {n})",
                    step=steps.approval_escalated(rid, n),
                )
            start = pending.asked_at + sum((lv.wait for lv in chain[:n]), timedelta(0))
            if await self._level(rid, pending, level, n, start):
                return True
        last, n = chain[-1], len(chain) - 1
        if case.playbook.on_no_decision == "decline":
            await case.escalate(
                f"approval {rid} undecided after its whole chain: declined, as the playbook "
                "says (on_no_decision = decline)",
                step=steps.approval_expired(rid),
            )
            return False
        await case.escalate(
            f"approval {rid} undecided after its whole chain: it stays with "
            f"{roles.role_word(last.role)}, reminded every {last.interval}, until decided",
            step=steps.approval_overdue(rid),
        )
        pending.then = f"another reminder to {roles.role_word(last.role)}"
        while True:
            pending.deadline = workflow.now() + last.interval
            if await self._decided(rid, last.interval):
                return True
            await self._remind(rid, pending, n)

    async def _level(
        self, rid: str, pending: ApprovalRequest, level: ApprovalLevel, n: int, start: datetime
    ) -> bool:
        """One level from `start` (where the levels before it end, however long sending took:
        the chain ends when the customer was told), its wait split by its reminders; True once
        decided."""
        pending.deadline = start + level.wait
        for r in range(level.reminders + 1):
            due = start + level.interval * (r + 1)
            if await self._decided(rid, max(due - workflow.now(), MIN_WAIT)):
                return True
            if r < level.reminders:
                await self._remind(rid, pending, n)
        return False

    async def _decided(self, rid: str, wait: timedelta) -> bool:
        try:
            await workflow.wait_condition(lambda: rid in self.decisions, timeout=wait)
        except TimeoutError:
            return False
        return True

    async def _remind(self, rid: str, pending: ApprovalRequest, n: int) -> None:
        pending.reminded += 1
        self.case.event(
            "approval_reminder", f"{rid}: reminder {pending.reminded} to {pending.role}"
        )
        await self._ask(rid, pending, steps.approval_reminder(rid, n, pending.reminded), "Reminder")

    async def _ask(self, rid: str, pending: ApprovalRequest, step: str, what: str) -> None:
        """The request to the role it is with, named in the message (ops reads and routes it)."""
        case, role = self.case, pending.role or "manager"
        await case.notify_ops(
            step,
            f"{what}: approval by {roles.role_word(role)}: {case.id}",
            f"{pending.reason}. For {roles.role_word(role)} (or above) "
            f"to decide by {pending.deadline:%Y-%m-%d %H:%M} UTC, then: {pending.then}.\n"
            f"Decide with: makegood approve {case.id} {rid} [--reject --note <why>]",
        )

    def _then(self, chain: list[ApprovalLevel], n: int) -> str:
        if n + 1 < len(chain):
            return f"escalated to {roles.role_word(chain[n + 1].role)}"
        if self.case.playbook.on_no_decision == "decline":
            return "declined (the playbook's rule for undecided approvals)"
        return f"reminders to {roles.role_word(chain[n].role)} until decided"

    async def _request_before_chain(
        self, rid: str, reason: str, amount: Money | None = None
    ) -> bool:
        """Cases opened before the approval chain: each timeout escalated one level, the
        last one declined. Kept as it was, so that their histories replay."""
        case = self.case
        timeouts = case.playbook.timeouts
        now = workflow.now()
        pending = ApprovalRequest(
            id=rid, reason=reason, amount=amount, asked_at=now, deadline=now + timeouts.approval
        )
        case.status.approval = pending
        case.event("approval_requested", f"{rid}: {reason}", amount=amount)
        case.sla.start("approval_decision", now, label=f"approval:{rid}")
        await case.notify_ops(
            steps.approval(rid),
            f"Approval needed: {case.id}",
            f"{reason}. Decide with: makegood approve {case.id} {rid} --as manager:<you> "
            "[--reject]",
        )
        decided = False
        for level in range(timeouts.approval_escalations + 1):
            try:
                await workflow.wait_condition(
                    lambda: rid in self.decisions, timeout=timeouts.approval
                )
                decided = True
                break
            except TimeoutError:
                if level < timeouts.approval_escalations:
                    pending.level = level + 1
                    pending.deadline = workflow.now() + timeouts.approval
                    await case.escalate(
                        f"approval {rid} undecided after {timeouts.approval}; escalated to "
                        f"level {level + 1}",
                        step=steps.approval_escalated(rid, level + 1),
                    )
        case.status.approval = None
        case.sla.stop(f"approval:{rid}", workflow.now())
        if not decided:
            await case.escalate(
                f"approval {rid} never decided: treated as declined",
                step=steps.approval_expired(rid),
            )
            return False
        return self.decisions[rid].approved


class SlaWatch:
    """Runs beside the recovery for the whole case: warnings notify the owner, breaches escalate."""

    def __init__(self, case: Case) -> None:
        self.case = case
        self.level = SlaLevel.OK  # the worst so far, as the MakegoodSla search attribute has it

    async def run(self) -> None:
        case, sla = self.case, self.case.sla
        while True:
            sla.changed = False
            alarm = sla.next_alarm(workflow.now())
            if alarm is None:
                await workflow.wait_condition(lambda: sla.changed)
                continue
            when, clock, kind = alarm
            wait = when - workflow.now()
            if wait > timedelta(0):
                try:
                    await workflow.wait_condition(lambda: sla.changed, timeout=wait)
                    continue
                except TimeoutError:
                    pass
            sla.fire(clock, kind, workflow.now())
            label = SLA_LABELS[clock.name] + (
                f" ({clock.label})" if clock.label != clock.name else ""
            )
            elapsed = timedelta(seconds=round(clock.elapsed_at(workflow.now()).total_seconds()))
            if kind == "warning":
                case.event("sla_warning", f"{label}: {elapsed} of {clock.target} used")
                await case.notify_ops(
                    steps.sla_warning(clock.label),
                    f"SLA warning: {case.id}",
                    f"{label} is at {elapsed} of its {clock.target} target. Owner: "
                    f"{case.status.owner or 'unassigned'}; stage {case.status.stage.value}.",
                    to=case.owner_contact,
                )
            else:
                await case.escalate(
                    f"SLA breached: {label} took longer than {clock.target}; "
                    "escalated to a manager",
                    step=steps.sla_breach(clock.label),
                )
            level = sla.level()
            if level != self.level:
                self.level = level
                workflow.upsert_search_attributes([SLA_KEY.value_set(level)])


def _partial_refusal(decision: ApprovalDecision, pending: ApprovalRequest) -> str | None:
    """Why a partial approval cannot be taken, or None."""
    part, asked = decision.amount, pending.amount
    assert part is not None
    if not decision.approved:
        return "an amount goes with an approval: a rejection declines everything that waits"
    if asked is None or pending.paid_meanwhile is None:
        return f"{pending.id} can only be approved or declined whole"
    if part.currency != asked.currency:
        return f"the amount is in {part.currency} but {asked} waits"
    if not Decimal(0) < part.amount < asked.amount:
        return f"a partial approval is more than 0 and less than the {asked} that waits"
    if not (decision.note or "").strip():
        return (
            f"approving part of {pending.id} needs a note saying why the rest is declined: "
            "the customer is told it as the reason"
        )
    return None
