"""RecoveryWorkflow: one service failure, from the report to the last follow-up.

acknowledge -> diagnose -> remedy -> compensate -> confirm -> follow-up -> document.
This class is the shell: the run loop, the updates people send (each with a validator, so a
caller learns at once whether the case took it) and the `status` query. The stages live in
their own modules: `remedies/` (one per remedy), `settlement` (compensation and payments),
`conversation` (telling and asking the customer), `oversight` (approvals and SLA clocks) and
`aftercare` (confirmation, follow-up, outcome). Every wait has a timeout and a defined
escalation, and the case's own history is the audit record.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from makegood.domain import calls, compensation, contract, roles, steps, wording
    from makegood.domain.actions import (
        NEEDS_VALUE,
        Accepted,
        AgentNote,
        ApprovalDecision,
        AssignCase,
        CancelCase,
        CustomerAnswer,
        EscalateCase,
        ExpenseClaim,
    )
    from makegood.domain.case import (
        ApprovalRecord,
        CaseInput,
        CaseOutcome,
        CaseStatus,
        Checkpoint,
        PaymentEvent,
        Resolution,
        Stage,
    )
    from makegood.domain.intake import ticket_problems
    from makegood.domain.provider import RelatedQuery

from makegood.workflows.aftercare import Aftercare
from makegood.workflows.case import Case, execute, failure_reason
from makegood.workflows.checkpoint import CONTINUE_PATCH, Parts, history_full
from makegood.workflows.claims import Claims
from makegood.workflows.conversation import Conversation
from makegood.workflows.faults import CannotContinue, Faults, fault, may_hand_off
from makegood.workflows.indexing import index_closed, index_opened
from makegood.workflows.oversight import Approvals, SlaWatch
from makegood.workflows.remedies import REMEDIES
from makegood.workflows.settlement import Settlement

# Looking up history must never hold up the apology for long.
HISTORY_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_attempts=3)


def _reject(message: str, kind: str = contract.INVALID_UPDATE) -> None:
    raise ApplicationError(message, type=kind, non_retryable=True)


def _reject_if(reason: str | None) -> None:
    if reason is not None:
        _reject(reason)


@workflow.defn(name=contract.RECOVERY_WORKFLOW)
class RecoveryWorkflow:
    @workflow.init
    def __init__(self, inp: CaseInput) -> None:
        # The same check the edge makes: a case started some other way with such a ticket is
        # handed to a person first thing (see `_recover`), and its clocks start from receipt.
        self.carried = inp.carried
        self.problems = [] if self.carried else ticket_problems(inp.ticket, inp.playbook)
        opened = (
            (None if self.problems else inp.ticket.reported_at) or inp.received_at or workflow.now()
        )
        self.status = (
            self.carried.status
            if self.carried
            else CaseStatus(
                case_id=workflow.info().workflow_id,
                ticket_id=inp.ticket.id,
                customer_id=inp.ticket.customer.id,
                kind=inp.ticket.incident.kind.value,
                playbook_version=inp.playbook_version,
                stage=Stage.ACKNOWLEDGE,
                opened_at=opened,
                discretion_limit=inp.playbook.discretion.limit(inp.ticket.incident.paid),
                opened_by=str(inp.opened_by) if inp.opened_by is not None else None,
            )
        )
        self.case = Case(inp, self.status)
        self.talk = Conversation(self.case)
        self.approvals = Approvals(self.case)
        self.slas = SlaWatch(self.case)
        self.remedy = REMEDIES[inp.playbook.remedy](self.case, self.talk, self.approvals)
        self.settlement = Settlement(self.case, self.talk, self.approvals)
        self.claims = Claims(self.case, self.settlement)
        self.aftercare = Aftercare(self.case, self.talk, self.settlement)
        self.faults = Faults(self.case, self.talk)
        self.parts = Parts(
            self.case, self.talk, self.approvals, self.slas, self.settlement, self.remedy
        )
        if self.carried is not None:
            self.parts.restore(self.carried)
        self._cancel: CancelCase | None = None
        self._main: asyncio.Task[Resolution] | None = None

    # ------------------------------------------------------------------ the recovery
    @workflow.run
    async def run(self, inp: CaseInput) -> CaseOutcome:
        now, opened = workflow.now(), self.status.opened_at
        if self.carried is None:  # a next run's clocks are in the status it carries
            for clock in ("first_contact", "remedy_offer", "resolution"):
                self.case.sla.start(clock, now, since=min(opened, now))
        watcher = asyncio.create_task(self.faults.guarded("SLA watch", self.slas.run()))
        settlements = asyncio.create_task(
            self.faults.guarded("payment events", self.settlement.watch())
        )
        self._main = asyncio.create_task(self._recover())
        try:
            resolution = await self._main
        except asyncio.CancelledError:
            if self._cancel is None:  # cancelled from outside: wind down all the same
                self._cancel = CancelCase(
                    reason="cancelled in Temporal", by={"id": "temporal", "role": "system"}
                )
            resolution = await self._wind_down(self._cancel)
        except Exception as err:
            if not may_hand_off(err):
                raise
            resolution = await self.faults.hand_off(fault(err))
        watcher.cancel()
        settlements.cancel()
        while self.settlement.unsettled:  # a failed payment reported as the case closed
            await self.case.escalate(self.settlement.unsettled.pop(0))
        outcome = await self.aftercare.document(resolution, self.remedy.result)
        await index_closed(self.case, outcome)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return outcome

    async def _recover(self) -> Resolution:
        """The stages in order; a next run (continued as new) skips those already done."""
        carried = self.carried
        if carried is None or not carried.reached("acknowledged"):
            if carried is None:
                await index_opened(self.case)
            if self.problems:
                raise CannotContinue("the ticket cannot be carried: " + "; ".join(self.problems))
            await self._find_related()
            await self._acknowledge()
            await self._checkpoint("acknowledged")
        if carried is None or not carried.reached("remedied"):
            await self.remedy.run()
            self.case.sla.stop("remedy_offer", workflow.now())
            await self._checkpoint("remedied")
        result = self.remedy.result
        if carried is None or not carried.reached("compensated"):
            await self.settlement.compensate(result)
            await self._checkpoint("compensated")
        if carried is None or not carried.reached("confirmed"):
            await self.aftercare.confirm(round_=1)
            self.case.sla.stop("resolution", workflow.now())
            await self._checkpoint("confirmed")
        first = carried.follow_up_round if carried and carried.checkpoint == "follow_up" else 1
        return await self.aftercare.follow_up(
            result, first_round=first, checkpoint=lambda n: self._checkpoint("follow_up", n)
        )

    async def _checkpoint(self, checkpoint: Checkpoint, follow_up_round: int = 1) -> None:
        """Between stages: past the history limit, the case goes on in a new run."""
        if history_full(self.case.playbook.limits.history_events) and workflow.patched(
            CONTINUE_PATCH
        ):
            await self.parts.continue_as_new(checkpoint, follow_up_round)

    async def _wind_down(self, cancel: CancelCase) -> Resolution:
        """An operator closed the case: free what is held, tell the customer, keep the record."""
        case = self.case
        self.status.cancelled = f"{cancel.reason} (by {cancel.by})"
        self.status.question = None
        self.status.approval = None
        case.event("cancelled", cancel.reason, by=str(cancel.by))
        await self.remedy.wind_down()
        await case.release_unused()
        for clock in list(case.sla.clocks):
            case.sla.stop(clock.label, workflow.now())
        await self.talk.tell_message(
            steps.CANCELLED,
            wording.cancelled(
                case.customer.first_name,
                case.id,
                cancel.reason,
                *compensation.settled_and_not(self.status.compensation, self.status.claims),
            ),
        )
        return "cancelled"

    async def _find_related(self) -> None:
        """Earlier cases of this customer or asset, for the agent and for the apology."""
        case, inc = self.case, self.case.incident
        try:
            found = await execute(
                calls.FIND_RELATED_CASES,
                RelatedQuery(
                    case_id=case.id,
                    customer_id=case.customer.id,
                    asset=inc.asset,
                    reference=inc.reference,
                ),
                retry=HISTORY_RETRY,
                start_to_close=timedelta(seconds=10),
            )
        except ActivityError as err:
            case.event("history", f"earlier cases unavailable: {failure_reason(err)}")
            return
        if not found.available:
            case.event("history", f"earlier cases unavailable: {found.note}")
            return
        self.status.related = found.cases
        same = sum(c.same_asset for c in found.cases)
        case.event(
            "history",
            f"{len(found.cases)} earlier case(s) of this customer or asset"
            + (f", {same} about {inc.asset}" if inc.asset else ""),
        )

    async def _acknowledge(self) -> None:
        case = self.case
        case.stage(Stage.ACKNOWLEDGE)
        await self.talk.tell_message(
            steps.ACK,
            wording.apology(
                case.customer.first_name,
                case.incident,
                case.id,
                [c for c in self.status.related if c.same_customer],  # never someone else's
            ),
        )

    # ---- payment provider events: a payment that failed after all goes to a person
    @workflow.signal(name=contract.PAYMENT_EVENT_SIGNAL)
    def payment_event(self, event: PaymentEvent) -> None:
        self.settlement.payment_event(event)

    # ------------------------------------------------------------------ updates and query
    @workflow.query(name=contract.STATUS_QUERY)
    def status_query(self) -> CaseStatus:
        return self.status

    @workflow.update(name=contract.ANSWER)
    def answer(self, answer: CustomerAnswer) -> Accepted:
        self.status.actions += 1
        self.talk.take(answer)
        self.case.event(
            "answer",
            f"{answer.question_id}: {answer.answer}"
            + (f" ({answer.value})" if answer.value else ""),
            by=str(answer.by),
        )
        return Accepted(case_id=self.status.case_id, detail=f"answer {answer.answer!r} taken")

    @answer.validator
    def _check_answer(self, answer: CustomerAnswer) -> None:
        self._check_open()
        _reject_if(roles.refusal_for(answer))
        _reject_if(roles.stranger(answer.by, self.status.customer_id))
        question = self.status.question
        if question is None:
            _reject("the case is not waiting for an answer")
        assert question is not None
        if answer.question_id != question.id:
            _reject(f"the open question is {question.id!r}, not {answer.question_id!r}")
        if answer.answer not in question.choices:
            _reject(f"answer must be one of {', '.join(question.choices)}")
        needed = NEEDS_VALUE.get(answer.answer)
        if needed and not answer.value:
            _reject(f"a {answer.answer} needs its {needed} as value")

    @workflow.update(name=contract.SUBMIT_CLAIM)
    async def submit_claim(self, claim: ExpenseClaim) -> Accepted:
        return await self.claims.submit(claim)

    @submit_claim.validator
    def _check_claim(self, claim: ExpenseClaim) -> None:
        self._check_open()
        self.claims.check(claim)

    @workflow.update(name=contract.DECIDE)
    def decide(self, decision: ApprovalDecision) -> Accepted:
        self.status.actions += 1
        self.approvals.take(decision)
        verdict = "approved" if decision.approved else "rejected"
        if decision.amount is not None:
            verdict = f"partly approved ({decision.amount})"
        opened_by = self.case.inp.opened_by
        pending = self.status.approval
        self.status.decisions.append(
            ApprovalRecord(
                request_id=decision.request_id,
                amount=decision.amount or (pending.amount if pending is not None else None),
                approved=decision.approved,
                by=str(decision.by),
                opened_by=str(opened_by) if opened_by is not None else None,
                at=workflow.now(),
            )
        )
        self.case.event(
            "approval",
            f"{decision.request_id} {verdict}"
            + (f" (case opened by {opened_by})" if opened_by is not None else "")
            + (f": {decision.note}" if decision.note else ""),
            by=str(decision.by),
        )
        return Accepted(case_id=self.status.case_id, detail=f"{decision.request_id} {verdict}")

    @decide.validator
    def _check_decision(self, decision: ApprovalDecision) -> None:
        self._check_open()
        _reject_if(roles.refusal_for(decision))
        pending = self.status.approval
        if pending is None:
            _reject("nothing is waiting for approval")
        assert pending is not None
        if decision.request_id != pending.id:
            _reject(f"the pending approval is {pending.id!r}, not {decision.request_id!r}")
        _reject_if(self.approvals.refusal(decision))
        if pending.amount is not None and self.case.playbook.four_eyes:
            involved = self._involvement(str(decision.by))
            if involved:
                _reject(
                    f"{decision.by} {involved}: money on a case needs a second manager's "
                    "approval (four eyes)"
                )

    def _involvement(self, who: str) -> str | None:
        """How a person took part in this case, if they did: they may not approve its money."""
        if self.case.inp.opened_by is not None and str(self.case.inp.opened_by) == who:
            return "opened this case"
        if any(str(c.by) == who for c in self.status.claims):
            return "claimed expenses in this case"
        if self.status.owner == who:
            return "owns this case"
        return None

    @workflow.update(name=contract.ADD_NOTE)
    def add_note(self, note: AgentNote) -> Accepted:
        self.status.actions += 1
        self.status.notes.append(f"{note.by}: {note.text}")
        self.case.event("note", note.text, by=str(note.by))
        return Accepted(case_id=self.status.case_id, detail="note added")

    @add_note.validator
    def _check_note(self, note: AgentNote) -> None:
        self._check_open()
        _reject_if(roles.refusal_for(note))
        limit = self.case.playbook.limits.notes
        if len(self.status.notes) >= limit:
            _reject(
                f"limit reached: at most {limit} notes per case; put the rest in the ticket",
                contract.LIMIT_REACHED,
            )

    @workflow.update(name=contract.ASSIGN)
    def assign(self, req: AssignCase) -> Accepted:
        self.status.actions += 1
        self.status.owner = str(req.to)
        self.case.owner_contact = req.contact
        self.case.event("assigned", f"owner is now {req.to}", by=str(req.by))
        return Accepted(case_id=self.status.case_id, detail=f"assigned to {req.to}")

    @assign.validator
    def _check_assign(self, req: AssignCase) -> None:
        self._check_open()
        _reject_if(roles.refusal_for(req))
        if self.status.owner == str(req.to):
            _reject(f"the case is already assigned to {req.to}")

    @workflow.update(name=contract.ESCALATE)
    async def escalate(self, req: EscalateCase) -> Accepted:
        self.status.actions += 1
        await self.case.escalate(f"{req.reason} (escalated by {req.by})")
        return Accepted(case_id=self.status.case_id, detail="escalated to ops")

    @escalate.validator
    def _check_escalate(self, req: EscalateCase) -> None:
        self._check_open(way_out=True)
        _reject_if(roles.refusal_for(req))

    @workflow.update(name=contract.CANCEL)
    def cancel(self, req: CancelCase) -> Accepted:
        self.status.actions += 1
        self._cancel = req
        assert self._main is not None
        self._main.cancel()
        return Accepted(
            case_id=self.status.case_id,
            detail="cancelled: reservations are released and the customer told",
        )

    @cancel.validator
    def _check_cancel(self, req: CancelCase) -> None:
        self._check_open(way_out=True)
        _reject_if(roles.refusal_for(req))
        if self._cancel is not None:
            _reject(f"case {self.status.case_id} is already being cancelled")
        if self._main is None or self._main.done():
            _reject(f"case {self.status.case_id} is closing and can no longer be cancelled")

    def _check_open(self, *, way_out: bool = False) -> None:
        """Closed cases take nothing; a case at its action limit still takes the ways out
        (escalate, cancel), so a flood can never lock people out of ending it."""
        if self.status.stage in (Stage.DOCUMENT, Stage.CLOSED):
            _reject(f"case {self.status.case_id} is closed")
        limit = self.case.playbook.limits.actions
        if not way_out and self.status.actions >= limit:
            _reject(
                f"limit reached: case {self.status.case_id} has taken its {limit} actions; "
                "ops must handle the rest outside Makegood",
                contract.LIMIT_REACHED,
            )
