"""Aftercare: confirm in writing, follow up until the customer is whole (re-opening the case
when they are not), and document the outcome so that failures can be found as trends.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from makegood.domain import calls, compensation, steps, wording
    from makegood.domain.actions import CustomerAnswer
    from makegood.domain.case import (
        CaseOutcome,
        CompensationItem,
        RemedyOutcome,
        RemedyResult,
        Resolution,
        Satisfaction,
        Stage,
    )
    from makegood.domain.money import Money

from makegood.workflows.case import Case, failure_reason
from makegood.workflows.conversation import Conversation
from makegood.workflows.settlement import Settlement

OUTCOME_PATCH = "outcome-record-failure-escalates"
UNREACHABLE_PATCH = "unreachable-closing-note"


def remedy_outcome(remedy: RemedyResult) -> RemedyOutcome:
    """Succeeded only when it did; unconfirmed when it hinged on an answer nobody gave."""
    if remedy.unconfirmed:
        return "unconfirmed"
    return "succeeded" if remedy.ok else "failed"


class Aftercare:
    def __init__(self, case: Case, talk: Conversation, settlement: Settlement) -> None:
        self.case = case
        self.talk = talk
        self.settlement = settlement
        self.satisfaction: Satisfaction = "not_asked"  # the last follow-up's answer

    async def confirm(self, round_: int) -> None:
        """One written summary of every action and amount so far."""
        case = self.case
        case.stage(Stage.CONFIRM)
        paid = [i for i in case.status.compensation if i.state == "paid" and i.amount]
        still_open = [i for i in case.status.compensation if i.state == "failed"]
        declined = [i for i in case.status.compensation if i.state == "declined"]
        message = wording.confirmation(
            case.customer.first_name,
            case.incident.reference,
            case.id,
            case.done,
            compensation.money_total(paid, case.currency) if paid else None,
            still_open,
            declined,
        )
        await self.talk.tell_message(steps.confirm(round_), message)

    async def follow_up(
        self,
        remedy: RemedyResult,
        *,
        first_round: int = 1,
        checkpoint: Callable[[int], Awaitable[None]] | None = None,
    ) -> Resolution:
        """Ask later whether all is put right; re-open when not, up to the playbook's limit.

        `checkpoint(round)` runs before each round's wait: the case may continue as new there.
        """
        case = self.case
        timeouts = case.playbook.timeouts
        if timeouts.follow_up_delay <= timedelta(0):
            return "resolved" if remedy.ok else "unresolved"
        round_ = first_round
        while True:
            if checkpoint is not None and round_ > first_round:
                await checkpoint(round_)
            case.stage(Stage.FOLLOW_UP)
            case.status.follow_up_at = workflow.now() + timeouts.follow_up_delay
            await workflow.sleep(timeouts.follow_up_delay)
            case.status.follow_up_at = None
            answer = await self.talk.ask(
                f"follow-up-{round_}",
                wording.FOLLOW_UP_QUESTION,
                ["satisfied", "not_satisfied"],
                wait=timeouts.follow_up_reply,
                reminders=timeouts.follow_up_reminders,
                if_silent="the case closes as unreachable, with a closing note to the customer",
            )
            if answer is None:
                self.satisfaction = "unconfirmed"
                case.event("unreachable", "no answer to the follow-up or its reminders")
                # Added while cases were running: those closed before it replay without it.
                if workflow.patched(UNREACHABLE_PATCH):
                    await self.talk.tell_message(
                        steps.CLOSED_UNANSWERED,
                        wording.closed_unanswered(case.customer.first_name, case.id),
                    )
                return "unreachable"
            if answer.answer == "satisfied":
                self.satisfaction = "satisfied"
                return "resolved"
            self.satisfaction = "not_satisfied"
            if round_ > case.playbook.max_reopens:
                await case.escalate(
                    f"customer still not satisfied after {round_} follow-ups: "
                    f"{answer.comment or 'no comment'}"
                )
                return "unresolved"
            case.status.reopened += 1
            case.event("reopened", answer.comment or "customer not satisfied")
            label = f"resolution:reopen-{round_}"
            case.sla.start("resolution", workflow.now(), label=label)
            await self._reopen(round_, answer)
            round_ += 1
            await self.confirm(round_=round_)
            case.sla.stop(label, workflow.now())

    async def _reopen(self, round_: int, answer: CustomerAnswer) -> None:
        case = self.case
        case.stage(Stage.COMPENSATE)
        extra = case.playbook.compensation.reopen_goodwill
        if extra <= 0:
            await case.escalate(f"case reopened: {answer.comment or 'customer not satisfied'}")
            return
        item = CompensationItem(
            step=steps.reopen_coupon(round_),
            kind="coupon",
            description="extra goodwill coupon",
            amount=Money(amount=extra, currency=case.currency),
        )
        await self.settlement.settle([item], request_id=f"reopen-{round_}")

    async def document(self, resolution: Resolution, remedy: RemedyResult) -> CaseOutcome:
        """The outcome record (kind, cause, attempts, costs, durations) and the case closed."""
        case, status = self.case, self.case.status
        case.stage(Stage.DOCUMENT)
        now = workflow.now()
        paid = [i for i in status.compensation if i.state == "paid"]
        goodwill = [i for i in paid if i.kind in ("coupon", "waiver")]
        first = status.first_contact_at
        outcome = CaseOutcome(
            case_id=case.id,
            kind=status.kind,
            cause=case.incident.summary,
            cause_code=case.incident.cause,
            resolution=resolution,
            remedy_attempts=remedy.attempts,
            remedy_succeeded=remedy.ok,
            paid_out=compensation.money_total(paid, case.currency),
            goodwill=compensation.money_total(goodwill, case.currency),
            escalations=len(status.escalations),
            reopened=status.reopened,
            approval_needed=self.settlement.approval_needed,
            opened_at=status.opened_at,
            first_contact_at=first,
            closed_at=now,
            seconds_to_first_contact=(
                (first - status.opened_at).total_seconds() if first else None
            ),
            seconds_to_close=(now - status.opened_at).total_seconds(),
            remedy=remedy_outcome(remedy),
            satisfaction=self.satisfaction,
            unconfirmed=list(status.unconfirmed),
            seconds_to_remedy=next(
                (
                    (c.stopped_at - status.opened_at).total_seconds()
                    for c in status.slas
                    if c.name == "remedy_offer" and c.stopped_at is not None
                ),
                None,
            ),
            sla_breaches=[c.name for c in status.slas if c.breached_at is not None],
            paid_by_kind={
                kind: compensation.money_total([i for i in paid if i.kind == kind], case.currency)
                for kind in dict.fromkeys(i.kind for i in paid)
            },
            customer_paid=case.incident.paid,
        )
        try:
            await case.call(calls.RECORD_OUTCOME, outcome)
        except ActivityError as err:
            # Added while cases were running (they failed here): the case still closes.
            if not workflow.patched(OUTCOME_PATCH):
                raise
            await case.escalate(
                f"the outcome record could not be written ({failure_reason(err)}); the case "
                "closes all the same: record it by hand for the trends"
            )
        status.resolution = resolution
        status.closed_at = now
        # Later cases read the resolution from the memo instead of fetching this history.
        # Added after cases were running: old histories replay without it (see README).
        if workflow.patched("memo-resolution"):
            workflow.upsert_memo({"resolution": resolution})
        case.stage(Stage.CLOSED)
        return outcome
