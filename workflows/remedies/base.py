"""The interface every remedy implements, and the result it hands to the settlement."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from makegood.domain import calls, steps, wording
    from makegood.domain.case import RemedyResult
    from makegood.domain.provider import OwnedKind, Ownership, OwnershipRequest

from makegood.workflows.case import Case, failure_reason
from makegood.workflows.conversation import Conversation
from makegood.workflows.oversight import Approvals

# Added while cases were running: cases opened before it replay without the check.
OWNERSHIP_PATCH = "verify-ownership"
HAND_OVER_PATCH = "hand-over-tells-the-customer"


class Remedy:
    """Fix it using the product itself; escalate when a fix fails."""

    def __init__(self, case: Case, talk: Conversation, approvals: Approvals) -> None:
        self.case = case
        self.talk = talk
        self.approvals = approvals
        self.result = RemedyResult()

    async def run(self) -> RemedyResult:
        self.result.ok = await self.attempt()
        return self.result

    async def attempt(self) -> bool:
        """Carry out the remedy: True when the customer's problem is fixed."""
        raise NotImplementedError

    async def hand_over(self, reason: str) -> None:
        """The remedy ran out: ops takes over (with the reason), unused bookings are released,
        and the customer is told who has it and by when; the case goes on to compensation."""
        case = self.case
        await case.escalate(reason)
        await case.release_unused()
        # Added while cases were running: those handed over before it replay without it.
        if workflow.patched(HAND_OVER_PATCH):
            await self.talk.tell_message(
                steps.HANDED_OVER,
                wording.handed_over(
                    case.customer.first_name,
                    case.id,
                    case.status.owner,
                    case.playbook.callbacks.hand_off_within,
                ),
            )

    async def wind_down(self) -> None:
        """The case was cancelled mid-remedy: account for what a call in flight may have done,
        before unused bookings are released. Most remedies hold nothing."""

    async def owned(self, kind: OwnedKind, ref: str) -> bool:
        """Before any product action, the product confirms the booking, asset or order is
        this customer's; if not (or it cannot say), nothing is done with it, a person takes
        over and the customer is told why."""
        if not workflow.patched(OWNERSHIP_PATCH):
            return True
        case = self.case
        try:
            found = await case.call(
                calls.VERIFY_OWNERSHIP,
                OwnershipRequest(customer_id=case.customer.id, kind=kind, ref=ref),
            )
        except ActivityError as err:
            found = Ownership(owned=False, detail=f"the check failed: {failure_reason(err)}")
        if found.owned:
            case.event("ownership", f"{kind} {ref} is the customer's")
            return True
        self.result.unverified = True
        await case.escalate(
            f"{kind} {ref} is not verified as the customer's ({found.detail}): nothing was "
            "done with it and nothing is paid; a person must check"
        )
        case.action("handed_off", wording.ownership_line(kind, ref))
        await self.talk.tell_message(
            steps.OWNERSHIP, wording.ownership_unverified(case.customer.first_name, kind, ref)
        )
        return False
