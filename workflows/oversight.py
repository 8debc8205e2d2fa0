"""Oversight: the managers' approvals and the SLA clocks that watch every case.

An approval waits for a manager's decision; each timeout escalates one level, and the last
one declines. SLA clocks warn the case's owner at `warn_at` of a target and escalate at 100 %.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import SearchAttributeKey

with workflow.unsafe.imports_passed_through():
    from makegood.domain import contract, steps
    from makegood.domain.actions import ApprovalDecision
    from makegood.domain.case import ApprovalRequest, SlaLevel
    from makegood.domain.money import Money

from makegood.workflows.case import Case

SLA_KEY = SearchAttributeKey.for_keyword(contract.SA_SLA)
SLA_LABELS = {
    "first_contact": "first contact",
    "remedy_offer": "remedy offered",
    "approval_decision": "approval decided",
    "resolution": "resolution",
}


class Approvals:
    def __init__(self, case: Case) -> None:
        self.case = case
        self.decisions: dict[str, ApprovalDecision] = {}  # request id -> the decision taken

    def take(self, decision: ApprovalDecision) -> None:
        self.decisions[decision.request_id] = decision

    async def request(self, rid: str, reason: str, amount: Money | None = None) -> bool:
        """Ask a manager; each timeout escalates one level, the last one declines."""
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
