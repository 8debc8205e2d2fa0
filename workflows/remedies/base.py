"""The interface every remedy implements, and the result it hands to the settlement."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from makegood.domain.provider import Quote

from makegood.workflows.case import Case
from makegood.workflows.conversation import Conversation
from makegood.workflows.oversight import Approvals


@dataclass
class RemedyResult:
    """What a remedy achieved, read by the compensation and the outcome record.

    A remedy keeps it up to date as it goes, so a case cancelled mid-remedy still records
    how many attempts were made.
    """

    ok: bool = False
    attempts: int = 0  # remedy attempts made (re-bookings, calls, a repair...)
    failed_attempts: int = 0  # what failed the customer again: counts towards compensation
    refund_requested: bool = False
    substitute: Quote | None = None  # a substitute the customer chose, to be ordered
    claims_invited: bool = False  # the customer was told to claim expenses (a taxi...)


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
