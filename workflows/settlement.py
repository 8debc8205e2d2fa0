"""Settlement: compensate fairly, within the frontline's discretion or with a manager's
approval, pay each item exactly once, and follow what the payment provider reports afterwards.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from makegood.domain import calls, compensation, ids, steps, wording
    from makegood.domain.case import (
        ApprovalRequest,
        CompensationItem,
        PaymentEvent,
        RemedyResult,
        Stage,
    )
    from makegood.domain.money import Money
    from makegood.domain.provider import PaymentRequest, PerkRequest, Quote, SubstituteRequest

from makegood.workflows.case import Case, execute, failure_reason, retry_policy
from makegood.workflows.conversation import Conversation
from makegood.workflows.oversight import CHAIN_PATCH, Approvals


class Settlement:
    def __init__(self, case: Case, talk: Conversation, approvals: Approvals) -> None:
        self.case = case
        self.talk = talk
        self.approvals = approvals
        self.claims_open = True  # expense claims are taken until the compensation is decided
        self.claims_checking = 0  # claims in the receipt index's hands (`Claims.submit`)
        self.substitute_placed = False
        self.approval_needed = False
        self.payment_events: set[str] = set()  # provider event ids already handled
        self.unsettled: list[str] = []  # payments that failed after all: each escalates

    async def compensate(self, remedy: RemedyResult) -> None:
        """Collect the customer's receipts, plan the compensation per policy, settle it."""
        case = self.case
        case.stage(Stage.COMPENSATE)
        if remedy.unverified:  # what the case is about is not (verified as) theirs
            self.claims_open = False
            case.event("compensation_withheld", "not verified as the customer's: a person decides")
            return
        policy = case.playbook.compensation
        if policy.reimburse_expenses and (remedy.claims_invited or case.status.claims):
            await self.talk.ask(
                "claims",
                wording.CLAIMS_QUESTION,
                ["done"],
                wait=case.playbook.timeouts.claims_window,
                window=True,  # an invitation that closes, not a question: nothing is assumed
            )
        self.claims_open = False
        if self.claims_checking:  # a claim sent before the window closed is still planned
            await workflow.wait_condition(lambda: not self.claims_checking)
        items = compensation.plan(
            case.playbook,
            case.incident.paid,
            failed_attempts=remedy.failed_attempts,
            refund_requested=remedy.refund_requested,
            claims=case.status.claims,
            price_difference=remedy.substitute.difference if remedy.substitute else None,
        )
        await self.settle(items, request_id="compensation", substitute=remedy.substitute)
        if remedy.substitute is not None and not self.substitute_placed:
            remedy.ok = False  # chosen is not done: the customer still lacks what they ordered

    async def settle(
        self, items: list[CompensationItem], request_id: str, substitute: Quote | None = None
    ) -> None:
        """Pay what the frontline may grant; above the limit (for the whole case) pay the part
        within it at once, tell the customer, and ask the approval chain for the rest."""
        case = self.case
        currency, limit = case.currency, case.status.discretion_limit
        granted = compensation.money_total(
            (i for i in case.status.compensation if i.state in ("approved", "paid")), currency
        )
        total = compensation.money_total(items, currency)
        # Claims the receipt index held (a receipt claimed before) always need a manager and
        # are never part of what fits the limit; its findings are the approver's to read.
        steps_ = {i.step for i in items}
        checks = [c for c in case.status.claim_checks if c.step in steps_]
        held = {c.step for c in checks if c.held}
        if (granted + total > limit or held) and workflow.patched(CHAIN_PATCH):
            notes = [n for c in checks for n in c.notes()]
            await self._split(items, request_id, substitute, granted, total, held, notes)
            return
        case.status.compensation.extend(items)
        if granted + total > limit or held:
            self.approval_needed = True
            so_far = f" on top of {granted} already granted" if granted.amount else ""
            why = (
                f"is above the frontline limit of {limit}"
                if granted + total > limit
                else "holds a claim a manager must decide"
            )
            approved = await self.approvals.request(
                request_id,
                "; ".join(
                    [
                        f"compensation of {total}{so_far} {why}",
                        *(n for c in checks for n in c.notes()),
                    ]
                ),
                amount=total,
            )
            headroom = limit - granted if granted <= limit else Money.zero(currency)
            fitting = [i for i in items if i.step not in held]
            allowed = items if approved else compensation.within_limit(fitting, headroom)
        else:
            case.event(
                "within_discretion",
                f"{total}{' more' if granted.amount else ''} within the frontline limit of {limit}",
            )
            allowed = items
        for item in items:
            item.state = "approved" if any(a is item for a in allowed) else "declined"
        for item in items:
            if item.state == "approved":
                await self._execute(item)
        if substitute is not None:
            await self._place_substitute(substitute, items)

    def _partly(
        self, rest: list[CompensationItem], granted: Money, asked: Money, request_id: str
    ) -> list[CompensationItem]:
        """A partial approval of what waited: items fill the granted amount in plan order (a
        refund or reimbursement split where it runs out, its granted part under a step of its
        own), the rest is declined with the decider's note. Returns the items as they stand."""
        case = self.case
        part = compensation.split(
            rest, granted, part_step=steps.approved_part, part_said="approved part"
        )
        because = f"{granted} of {asked} approved: {self.approvals.declined_because(request_id)}"
        for item in part.now:
            item.state = "approved"
        for item in part.rest:
            item.state = "declined"
            item.declined_because = because
        items = case.status.compensation
        at = next((n for n, i in enumerate(items) if rest and i is rest[0]), len(items))
        kept = [i for i in items if all(i is not r for r in rest)]
        case.status.compensation = kept[:at] + part.items + kept[at:]
        case.event("partly_approved", f"{request_id}: {because}", amount=granted)
        return part.items

    async def _split(
        self,
        items: list[CompensationItem],
        request_id: str,
        substitute: Quote | None,
        granted: Money,
        total: Money,
        held: set[str],
        notes: list[str],
    ) -> None:
        """Above the limit (or with a held claim): the part within it is paid at once (the
        substitute placed, unless its waiver waits), the customer is told what was paid and
        who decides the rest by when, and the rest (held claims always) stays pending in the
        status until someone decides."""
        case = self.case
        currency, limit = case.currency, case.status.discretion_limit
        self.approval_needed = True
        headroom = limit - granted if granted <= limit else Money.zero(currency)
        plan = compensation.split(items, headroom, held=held)
        for item in plan.now:
            item.state = "approved"
        for item in plan.rest:
            item.state = "pending"
        case.status.compensation.extend(plan.items)
        now_total = compensation.money_total(plan.now, currency)
        rest_total = compensation.money_total(plan.rest, currency)
        waits_for_waiver = any(i.kind == "waiver" for i in plan.rest)

        async def pay_now_and_tell(pending: ApprovalRequest) -> None:
            for item in plan.now:
                await self._execute(item)
            if substitute is not None and not waits_for_waiver:
                await self._place_substitute(substitute, plan.items)
            paid = [i for i in plan.now if i.state == "paid"]
            await self.talk.tell_message(
                steps.compensation_pending(request_id),
                wording.compensation_pending(
                    case.customer.first_name,
                    case.id,
                    paid,
                    plan.rest,
                    rest_total,
                    pending.role,
                    pending.decide_by or pending.deadline,
                ),
            )

        so_far = f" on top of {granted} already granted" if granted.amount else ""
        why = (
            f"is above the frontline limit of {limit}"
            if granted + total > limit
            else "holds a claim a manager must decide"
        )
        split = (
            f": {now_total} paid at once, {rest_total} waits for this approval"
            if now_total.amount
            else ""
        )
        approved = await self.approvals.request(
            request_id,
            "; ".join([f"compensation of {total}{so_far} {why}{split}", *notes]),
            amount=rest_total,
            paid_meanwhile=now_total,
            on_asked=pay_now_and_tell,
        )
        because = None if approved else self.approvals.declined_because(request_id)
        rest = plan.rest
        granted_part = self.approvals.granted(request_id) if approved else None
        if granted_part is not None:  # partly approved: that much now, the rest declined
            rest = self._partly(rest, granted_part, rest_total, request_id)
        else:
            for item in rest:
                item.state = "approved" if approved else "declined"
                item.declined_because = because
        for item in rest:
            if item.state == "approved":
                await self._execute(item)
        if substitute is not None and waits_for_waiver:
            await self._place_substitute(substitute, plan.items)

    async def _execute(self, item: CompensationItem) -> None:
        case = self.case
        try:
            if item.kind in ("refund", "reimbursement", "coupon"):
                assert item.amount is not None
                receipt = await execute(
                    calls.MAKE_PAYMENT,
                    PaymentRequest(
                        step=item.step,
                        kind=item.kind,
                        amount=item.amount,
                        customer_id=case.customer.id,
                        reference=case.incident.reference,
                        memo=item.description,
                    ),
                    retry=retry_policy(case.inp.retries.payment),
                    schedule_to_close=case.inp.retries.payment_deadline,
                )
                item.state, item.receipt = "paid", receipt.payment_id
                case.action("paid", item.description, amount=item.amount)
            elif item.kind == "perk":
                granted = await case.call(
                    calls.GRANT_PERK,
                    PerkRequest(
                        step=item.step, customer_id=case.customer.id, perk=steps.perk_of(item.step)
                    ),
                )
                item.state, item.receipt = "paid", granted.action_id
                case.action("perk", item.description)
        except ActivityError as err:
            item.state, item.failure = "failed", failure_reason(err)
            await case.escalate(f"{item.description} failed: {item.failure}")

    async def _place_substitute(self, quote: Quote, items: list[CompensationItem]) -> None:
        """Order the substitute the customer chose, with the waived difference if approved."""
        case = self.case
        waiver = next((i for i in items if i.kind == "waiver"), None)
        waived = (
            waiver.amount
            if waiver and waiver.state == "approved" and waiver.amount
            else Money.zero(case.currency)
        )
        try:
            await case.call(
                calls.PLACE_SUBSTITUTE,
                SubstituteRequest(
                    step=steps.SUBSTITUTE,
                    order=case.incident.reference,
                    sku=quote.substitute_sku,
                    customer_id=case.customer.id,
                    waived=waived,
                ),
            )
            self.substitute_placed = True
            case.action(
                "substitute",
                wording.substitute_line(quote.substitute_sku),
                amount=waived if waived.amount else None,
            )
            if waiver is not None and waiver.state == "approved":
                waiver.state = "paid"
        except ActivityError as err:
            if waiver is not None:
                waiver.state, waiver.failure = "failed", failure_reason(err)
            await case.escalate(f"substitute order failed: {failure_reason(err)}")

    # ---- what the payment provider says afterwards: a payment that failed goes to a person
    def payment_event(self, event: PaymentEvent) -> None:
        """Delivered at least once and in any order: duplicates and stale events are ignored."""
        case = self.case
        if event.event_id in self.payment_events:
            return
        self.payment_events.add(event.event_id)
        step = ids.step_in(event.idempotency_key, case.id)
        item = next((i for i in case.status.compensation if i.step == step), None)
        if step is None or item is None:
            unknown = step or event.idempotency_key
            case.event("payment_event", f"{event.type} for unknown step {unknown}: ignored")
            return
        if item.settlement == "failed" or (
            item.settlement == "refunded" and event.type == "settled"
        ):
            case.event("payment_event", f"{event.type} for {step} after {item.settlement}: ignored")
            return
        item.settlement = event.type
        case.event(
            "payment_event",
            f"{step}: {event.type}" + (f" ({event.reason})" if event.reason else ""),
            amount=item.amount,
        )
        if event.type == "failed":
            item.state, item.failure = "failed", event.reason or "payment failed to settle"
            self.unsettled.append(
                f"{item.description} ({item.amount}) did not settle: {item.failure}"
            )

    async def watch(self) -> None:
        """Runs beside the recovery: each payment that failed to settle escalates."""
        while True:
            await workflow.wait_condition(lambda: bool(self.unsettled))
            await self.case.escalate(self.unsettled.pop(0))
