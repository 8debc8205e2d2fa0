"""Expense claims: what the case takes, and what the receipt index says about each one.

Since `receipt-documents`, a claim is registered in the receipt index (an activity, run by the
update's handler) before the case takes it. The index answers which earlier claims of this
customer carry the same receipt file (in this case or another) and which look like this one
(same amount and description within a day). The playbook decides:

- `duplicate_receipt = "refuse"`: the update fails, naming the earlier claim; nothing is taken;
- `duplicate_receipt = "hold"`: the claim is taken as held; it is paid only if a manager
  approves the compensation, whose reason names the earlier claim (`Settlement.settle`);
- near duplicates are flagged on the claim and in the approval's reason
  (`near_duplicate = "hold"` holds them too).

Cases that took claims before the patch replay as they ran: no activity, nothing held.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from makegood.domain import calls, contract, roles
    from makegood.domain.actions import Accepted, ExpenseClaim
    from makegood.domain.pseudonyms import legacy
    from makegood.domain.receipts import (
        ClaimCheck,
        ClaimRegistration,
        ReceiptFindings,
        already_claimed,
    )

from makegood.workflows.case import Case, UnreadableAnswer, execute, failure_reason
from makegood.workflows.settlement import Settlement

RECEIPTS_PATCH = "receipt-documents"
CUSTOMER_KEY = SearchAttributeKey.for_keyword(contract.SA_CUSTOMER)
# The caller waits for the answer: a few quick tries, then "try again" rather than a long wait.
INDEX_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    maximum_interval=timedelta(seconds=2),
    maximum_attempts=5,
)


def reject(message: str, kind: str = contract.INVALID_UPDATE) -> None:
    raise ApplicationError(message, type=kind, non_retryable=True)


class Claims:
    def __init__(self, case: Case, settlement: Settlement) -> None:
        self.case = case
        self.settlement = settlement
        self.in_flight: set[str] = set()  # claim ids being registered

    def check(self, claim: ExpenseClaim) -> None:
        """The claim's validator, after the case's own checks (open, within its limits); in
        the order the checks always ran, so a refusal's reason is the one it always was."""
        case, status = self.case, self.case.status
        policy = case.playbook.compensation
        if not policy.reimburse_expenses:
            reject(f"{status.kind} cases do not reimburse expenses")
        if not self.settlement.claims_open:
            reject("expense claims are closed: the compensation has already been decided")
        refused = roles.refusal_for(claim) or roles.stranger(claim.by, status.customer_id)
        if refused is not None:
            reject(refused)
        currency = case.currency
        if claim.amount.currency != currency:
            reject(f"claim is in {claim.amount.currency} but this case is in {currency}")
        if claim.amount.amount <= 0:
            reject("a claim must be for more than zero")
        if claim.amount.amount > policy.max_claim:
            reject(
                f"{claim.amount} is above the per-claim maximum of {policy.max_claim} "
                f"{currency}: a manager must handle it"
            )
        if any(c.claim_id == claim.claim_id for c in status.claims):
            reject(f"claim {claim.claim_id} was already submitted")
        if claim.claim_id in self.in_flight:
            reject(f"claim {claim.claim_id} is being submitted")
        if len(status.claims) + len(self.in_flight) >= policy.max_claims:
            reject(
                f"limit reached: at most {policy.max_claims} claims per case",
                contract.LIMIT_REACHED,
            )

    async def submit(self, claim: ExpenseClaim) -> Accepted:
        """Take the claim: held, flagged or plain per the receipt index; or refuse it."""
        status = self.case.status
        status.actions += 1
        if not workflow.patched(RECEIPTS_PATCH):
            return self._take(claim, None)
        self.in_flight.add(claim.claim_id)
        self.settlement.claims_checking += 1
        try:
            found = await self._register(claim)
        finally:
            self.in_flight.discard(claim.claim_id)
            self.settlement.claims_checking -= 1
        if not found.uploaded:
            reject(
                f"no receipt with SHA-256 {claim.receipt_sha256} was uploaded: upload the file "
                f"first (POST /cases/{status.case_id}/receipts, or makegood claim --receipt "
                "FILE); nothing was recorded"
            )
        policy = self.case.playbook.compensation
        if found.same_receipt and policy.duplicate_receipt == "refuse":
            reject(
                f"{already_claimed(found.same_receipt[0])}; claim {claim.claim_id} was not taken"
            )
        held = bool(found.same_receipt) or (bool(found.near) and policy.near_duplicate == "hold")
        check = ClaimCheck(
            claim_id=claim.claim_id,
            receipt_sha256=claim.receipt_sha256,
            held=held,
            same_receipt=found.same_receipt,
            near=found.near,
        )
        return self._take(claim, check)

    def _take(self, claim: ExpenseClaim, check: ClaimCheck | None) -> Accepted:
        case, status = self.case, self.case.status
        status.claims.append(claim)
        case.event(
            "claim", f"{claim.claim_id}: {claim.description}", amount=claim.amount, by=str(claim.by)
        )
        detail = f"claim {claim.claim_id} for {claim.amount} accepted"
        if check is not None:
            status.claim_checks.append(check)
            notes = check.notes()
            if check.held:
                case.event("claim_held", "; ".join(notes) + ": paid only if a manager approves")
                detail += ", held for a manager's approval"
            elif notes:
                case.event("claim_flagged", "; ".join(notes))
            if notes:
                detail += f" ({'; '.join(notes)})"
        return Accepted(case_id=status.case_id, detail=detail)

    async def _register(self, claim: ExpenseClaim) -> ReceiptFindings:
        case = self.case
        # The customer as visibility knows them: the keyed pseudonym the case was opened with
        # (a case started without it, past the edge, falls back to the unkeyed form).
        customer = workflow.info().typed_search_attributes.get(CUSTOMER_KEY) or legacy(
            "customer", case.customer.id
        )
        registration = ClaimRegistration(
            case_id=case.id,
            claim_id=claim.claim_id,
            customer=customer,
            receipt_sha256=claim.receipt_sha256,
            amount=claim.amount,
            description=claim.description,
            at=workflow.now(),
            duplicates=case.playbook.compensation.duplicate_receipt,
        )
        try:
            return await execute(
                calls.REGISTER_CLAIM,
                registration,
                retry=INDEX_RETRY,
                start_to_close=timedelta(seconds=10),
            )
        except (ActivityError, UnreadableAnswer) as err:
            reason = failure_reason(err) if isinstance(err, ActivityError) else str(err)
            raise ApplicationError(
                f"claim {claim.claim_id} was not taken: the receipt index could not be "
                f"reached ({reason}); nothing was recorded, try again",
                type=contract.INVALID_UPDATE,
                non_retryable=True,
            ) from None
