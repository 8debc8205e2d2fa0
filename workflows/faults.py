"""Faults nobody planned for: a person takes the case over, never a wedged case.

A workflow task that raises anything but a Temporal failure is retried by the SDK forever:
no escalation, no SLA alert, no status. The recovery catches what its stages raise and hands
the case to a person here; watchers beside it escalate instead of vanishing. Only a
nondeterminism error is left to fail the task, since a fixed deployment resumes that case.
"""

from __future__ import annotations

from collections.abc import Awaitable

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from makegood.domain import steps, wording
    from makegood.domain.case import Resolution

from makegood.workflows.case import Case, failure_reason
from makegood.workflows.conversation import Conversation

# Added while cases were running. Before it, a fault nobody planned for failed the workflow
# task on every retry (the case wedged) or failed the run; since, the case is handed to a
# person. A wedged case picks the change up on its next task retry and is handed over.
HAND_OFF_PATCH = "hand-off-on-fault"


class CannotContinue(Exception):
    """The case cannot go on by itself; the message says why, for ops and the record."""


def fault(err: Exception) -> str:
    if isinstance(err, CannotContinue):
        return str(err)
    if isinstance(err, ActivityError):
        return f"a provider call failed: {failure_reason(err)}"
    return f"{type(err).__name__}: {err}"


def may_hand_off(err: Exception) -> bool:
    if isinstance(err, workflow.NondeterminismError):
        return False  # a deployment problem: the task must fail until it is fixed
    return workflow.patched(HAND_OFF_PATCH)


class Faults:
    def __init__(self, case: Case, talk: Conversation) -> None:
        self.case = case
        self.talk = talk

    async def guarded(self, name: str, work: Awaitable[None]) -> None:
        """A watcher beside the recovery that fails is escalated, not silently gone."""
        try:
            await work
        except Exception as err:
            if not may_hand_off(err):
                raise
            await self.case.escalate(f"{name} stopped: {fault(err)}; watch this case by hand")

    async def hand_off(self, reason: str) -> Resolution:
        """Free what is held, put a person on the case and tell the customer who and by when."""
        case = self.case
        case.status.handed_off = reason
        self.case.status.question = None
        self.case.status.approval = None
        await case.escalate(
            f"the case cannot go on by itself, a person must take it over: {reason}"
        )
        await case.release_unused()
        for clock in list(case.sla.clocks):
            case.sla.stop(clock.label, workflow.now())
        await self.talk.tell_message(
            steps.TAKEN_OVER,
            wording.taken_over(
                case.customer.first_name,
                case.id,
                self.case.status.owner,
                case.playbook.callbacks.hand_off_within,
            ),
        )
        return "handed_off"
