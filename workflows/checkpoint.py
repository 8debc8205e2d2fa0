"""Continue-as-new: a case whose history grows long goes on in a fresh run with all it knows.

Temporal refuses a history past 51,200 events (or 50 MB), and a long one slows every replay.
People's actions are bounded per case (`Limits`), yet a case that is re-opened, reminded and
noted for weeks can still grow long, so at each checkpoint between stages (nothing in flight:
no activity, question, approval or call-back) the case checks its length and, past the
playbook's `limits.history_events` or when the server suggests it, continues as new. The next
run starts from `Carried` and skips what is done; idempotency keys are per case id, not per
run, so nothing is paid or sent twice across runs.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from makegood.domain.case import Carried, Checkpoint

from makegood.workflows.case import Case
from makegood.workflows.conversation import Conversation
from makegood.workflows.oversight import Approvals, SlaWatch
from makegood.workflows.remedies import Remedy
from makegood.workflows.settlement import Settlement

# Added while cases were running: cases that never checked replay without the marker.
CONTINUE_PATCH = "continue-as-new-at-checkpoints"


class Parts:
    """The stages whose state a run hands on; `carry` and `restore` are each other's inverse."""

    def __init__(
        self,
        case: Case,
        talk: Conversation,
        approvals: Approvals,
        slas: SlaWatch,
        settlement: Settlement,
        remedy: Remedy,
    ) -> None:
        self.case = case
        self.talk = talk
        self.approvals = approvals
        self.slas = slas
        self.settlement = settlement
        self.remedy = remedy

    def carry(self, checkpoint: Checkpoint, follow_up_round: int, run: int) -> Carried:
        case, settlement = self.case, self.settlement
        return Carried(
            checkpoint=checkpoint,
            follow_up_round=follow_up_round,
            run=run,
            status=case.status,
            done=case.done,
            owner_contact=case.owner_contact,
            answers=self.talk.answers,
            decisions=self.approvals.decisions,
            sla_level=self.slas.level,
            claims_open=settlement.claims_open,
            approval_needed=settlement.approval_needed,
            payment_events=sorted(settlement.payment_events),
            unsettled=settlement.unsettled,
            remedy=self.remedy.result,
        )

    def restore(self, carried: Carried) -> None:
        case, settlement = self.case, self.settlement
        case.done = list(carried.done)
        case.owner_contact = carried.owner_contact
        self.talk.answers = dict(carried.answers)
        self.approvals.decisions = dict(carried.decisions)
        self.slas.level = carried.sla_level
        settlement.claims_open = carried.claims_open
        settlement.approval_needed = carried.approval_needed
        settlement.payment_events = set(carried.payment_events)
        settlement.unsettled = list(carried.unsettled)
        self.remedy.result = carried.remedy

    async def continue_as_new(self, checkpoint: Checkpoint, follow_up_round: int = 1) -> None:
        """Hand the case to its next run once every update and signal in hand is finished."""
        await workflow.wait_condition(workflow.all_handlers_finished)
        inp = self.case.inp
        run = inp.carried.run + 1 if inp.carried is not None else 2
        self.case.event("continued", f"the history is long: the case goes on in run {run}")
        carried = self.carry(checkpoint, follow_up_round, run)
        workflow.continue_as_new(
            inp.model_copy(update={"carried": carried}), memo=dict(workflow.memo())
        )


def history_full(limit: int) -> bool:
    info = workflow.info()
    return info.get_current_history_length() >= limit or info.is_continue_as_new_suggested()
