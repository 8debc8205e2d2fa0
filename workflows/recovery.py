"""RecoveryWorkflow: one service failure, from the report to the last follow-up.

acknowledge -> diagnose -> remedy -> compensate -> confirm -> follow-up -> document.
People act on the case through updates (validated, so a caller learns at once whether the
case took it); the `status` query shows where it stands. Every wait has a timeout and a
defined escalation, and the case's own history is the audit record.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from makegood.activities import names
    from makegood.domain import compensation, contract
    from makegood.domain.actions import (
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
        ApprovalRequest,
        Booking,
        CallbackInput,
        CallbackState,
        CaseInput,
        CaseOutcome,
        CaseStatus,
        CompensationItem,
        Escalation,
        Event,
        PaymentEvent,
        Question,
        RelatedCases,
        Resolution,
        Stage,
    )
    from makegood.domain.money import Money
    from makegood.domain.playbook import Backoff
    from makegood.domain.provider import (
        BookingResult,
        LocateRequest,
        LocateResult,
        MessageReceipt,
        MessageRequest,
        PaymentReceipt,
        PaymentRequest,
        PerkRequest,
        ProductReceipt,
        Quote,
        QuoteRequest,
        RebookRequest,
        RelatedQuery,
        ReleaseRequest,
        RemakeRequest,
        RepairRequest,
        Replacement,
        ReplaceRequest,
        ReturnLabel,
        ReturnRequest,
        ShipRequest,
        StockRequest,
        StockResult,
        SubstituteRequest,
    )
    from makegood.domain.sla import SlaBook
    from makegood.domain.ticket import Channel


def _retry(backoff: Backoff) -> RetryPolicy:
    return RetryPolicy(
        initial_interval=backoff.initial,
        maximum_interval=backoff.maximum,
        maximum_attempts=backoff.attempts,
    )


# Looking up history must never hold up the apology for long.
HISTORY_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_attempts=3)
STAGE_KEY = SearchAttributeKey.for_keyword(contract.SA_STAGE)
SLA_KEY = SearchAttributeKey.for_keyword(contract.SA_SLA)
SLA_LABELS = {
    "first_contact": "first contact",
    "remedy_offer": "remedy offered",
    "approval_decision": "approval decided",
    "resolution": "resolution",
}

CALL_TIMEOUT = timedelta(seconds=30)


def _reject(message: str) -> None:
    raise ApplicationError(message, type="InvalidUpdate", non_retryable=True)


def _failure_reason(err: ActivityError) -> str:
    cause = err.cause
    if isinstance(cause, ApplicationError):
        retried = "" if cause.non_retryable else " (gave up after retries)"
        return f"{cause.message}{retried}"
    return str(cause or err)


@workflow.defn(name=contract.RECOVERY_WORKFLOW)
class RecoveryWorkflow:
    @workflow.init
    def __init__(self, inp: CaseInput) -> None:
        self.inp = inp
        self.ticket = inp.ticket
        self.playbook = inp.playbook
        self.customer = inp.ticket.customer
        self.incident = inp.ticket.incident
        opened = inp.ticket.reported_at or inp.received_at or workflow.now()
        self.status = CaseStatus(
            case_id=workflow.info().workflow_id,
            ticket_id=inp.ticket.id,
            customer_id=self.customer.id,
            kind=self.incident.kind.value,
            playbook_version=inp.playbook_version,
            stage=Stage.ACKNOWLEDGE,
            opened_at=opened,
            discretion_limit=self.playbook.discretion.limit(self.incident.paid),
        )
        self._answers: dict[str, CustomerAnswer] = {}
        self._decisions: dict[str, ApprovalDecision] = {}
        self._claims_open = True
        self._claims_invited = False
        self._failed_attempts = 0
        self._remedy_attempts = 0
        self._remedy_ok = False
        self._refund_requested = False
        self._substitute: Quote | None = None
        self._done: list[str] = []
        self._approval_needed = False
        self._cause = self.incident.summary
        self._sla = SlaBook(self.playbook.sla, self.status.slas)
        self._sla_level = "ok"
        self._cancel: CancelCase | None = None
        self._owner_contact: str | None = None
        self._payment_events: set[str] = set()
        self._unsettled: list[str] = []
        self._main: asyncio.Task[Resolution] | None = None

    # ------------------------------------------------------------------ the recovery
    @workflow.run
    async def run(self, inp: CaseInput) -> CaseOutcome:
        now, opened = workflow.now(), self.status.opened_at
        for clock in ("first_contact", "remedy_offer", "resolution"):
            self._sla.start(clock, now, since=min(opened, now))
        watcher = asyncio.create_task(self._watch_slas())
        settlements = asyncio.create_task(self._watch_settlements())
        self._main = asyncio.create_task(self._recover())
        try:
            resolution = await self._main
        except asyncio.CancelledError:
            if self._cancel is None:  # cancelled from outside: wind down all the same
                self._cancel = CancelCase(
                    reason="cancelled in Temporal", by={"id": "temporal", "role": "system"}
                )
            resolution = await self._wind_down(self._cancel)
        watcher.cancel()
        settlements.cancel()
        while self._unsettled:  # a failed payment reported as the case closed still escalates
            await self._escalate(self._unsettled.pop(0))
        outcome = await self._document(resolution)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return outcome

    async def _recover(self) -> Resolution:
        await self._find_related()
        await self._acknowledge()
        self._remedy_ok = await self._diagnose_and_remedy()
        self._sla.stop("remedy_offer", workflow.now())
        await self._compensate()
        await self._confirm(round_=1)
        self._sla.stop("resolution", workflow.now())
        return await self._follow_up_until_settled()

    async def _wind_down(self, cancel: CancelCase) -> Resolution:
        """An operator closed the case: free what is held, tell the customer, keep the record."""
        self.status.cancelled = f"{cancel.reason} (by {cancel.by})"
        self.status.question = None
        self.status.approval = None
        self._event("cancelled", cancel.reason, by=str(cancel.by))
        await self._release_unused()
        for clock in list(self._sla.clocks):
            self._sla.stop(clock.label, workflow.now())
        await self._tell(
            "cancelled",
            "Your case is closed",
            f"Dear {self.customer.first_name},\n\nwe have closed case "
            f"{self.status.case_id}: {cancel.reason}. If anything is still not "
            "right, reply to this message and we pick it up at once.",
        )
        return "cancelled"

    # ---- payment provider events: a payment that failed after all goes to a person
    @workflow.signal(name=contract.PAYMENT_EVENT_SIGNAL)
    def payment_event(self, event: PaymentEvent) -> None:
        if event.event_id in self._payment_events:
            return
        self._payment_events.add(event.event_id)
        step = event.idempotency_key.removeprefix(f"{self.status.case_id}:")
        item = next((i for i in self.status.compensation if i.step == step), None)
        if item is None:
            self._event("payment_event", f"{event.type} for unknown step {step}: ignored")
            return
        if item.settlement == "failed" or (
            item.settlement == "refunded" and event.type == "settled"
        ):
            self._event(
                "payment_event", f"{event.type} for {step} after {item.settlement}: ignored"
            )
            return
        item.settlement = event.type
        self._event(
            "payment_event",
            f"{step}: {event.type}" + (f" ({event.reason})" if event.reason else ""),
            amount=item.amount,
        )
        if event.type == "failed":
            item.state, item.failure = "failed", event.reason or "payment failed to settle"
            self._unsettled.append(
                f"{item.description} ({item.amount}) did not settle: {item.failure}"
            )

    async def _watch_settlements(self) -> None:
        while True:
            await workflow.wait_condition(lambda: bool(self._unsettled))
            await self._escalate(self._unsettled.pop(0))

    # ---- SLA clocks: warnings notify the owner, breaches escalate
    async def _watch_slas(self) -> None:
        while True:
            self._sla.changed = False
            alarm = self._sla.next_alarm(workflow.now())
            if alarm is None:
                await workflow.wait_condition(lambda: self._sla.changed)
                continue
            when, clock, kind = alarm
            wait = when - workflow.now()
            if wait > timedelta(0):
                try:
                    await workflow.wait_condition(lambda: self._sla.changed, timeout=wait)
                    continue
                except TimeoutError:
                    pass
            self._sla.fire(clock, kind, workflow.now())
            label = SLA_LABELS[clock.name] + (
                f" ({clock.label})" if clock.label != clock.name else ""
            )
            elapsed = timedelta(seconds=round(clock.elapsed_at(workflow.now()).total_seconds()))
            if kind == "warning":
                self._event("sla_warning", f"{label}: {elapsed} of {clock.target} used")
                await self._notify_ops(
                    f"sla:{clock.label}:warning",
                    f"SLA warning: {self.status.case_id}",
                    f"{label} is at {elapsed} of its {clock.target} target. Owner: "
                    f"{self.status.owner or 'unassigned'}; stage {self.status.stage.value}.",
                    to=self._owner_contact,
                )
            else:
                await self._escalate(
                    f"SLA breached: {label} took longer than {clock.target}; "
                    "escalated to a manager",
                    step=f"sla:{clock.label}:breach",
                )
            level = self._sla.level()
            if level != self._sla_level:
                self._sla_level = level
                workflow.upsert_search_attributes([SLA_KEY.value_set(level)])

    async def _acknowledge(self) -> None:
        self._stage(Stage.ACKNOWLEDGE)
        inc = self.incident
        what = {
            "car_missing": f"the car for your reservation {inc.reference} was not at "
            f"{inc.location}",
            "wrong_item": f"order {inc.reference} arrived with {inc.item} instead of {inc.wanted}",
            "wrong_order": f"your order {inc.reference} ({inc.item}) was made wrong",
            "warranty_fault": f"your {inc.item} ({inc.asset}) has a {inc.fault} fault",
            "defective_item": f"the {inc.item} from your order {inc.reference} does not work",
            "support_call": f"you still need help with your {inc.item}",
        }[inc.kind.value]
        history = ""
        if self.status.related:
            earlier = "; ".join(
                f"{c.case_id} on {c.opened_at:%Y-%m-%d} ({c.summary})"
                for c in self.status.related[-3:]
            )
            history = f" We have your earlier case(s) in front of us too: {earlier}."
        await self._tell(
            "ack",
            "We are sorry",
            f"Dear {self.customer.first_name},\n\nwe are sorry: {what}. You do not need to "
            f"explain anything again: case {self.status.case_id} has everything you told us, "
            f"and we are fixing it now.{history}",
        )

    async def _find_related(self) -> None:
        """Earlier cases of this customer or asset, for the agent and for the apology."""
        inc = self.incident
        try:
            found: RelatedCases = await workflow.execute_activity(
                names.FIND_RELATED_CASES,
                RelatedQuery(
                    case_id=self.status.case_id,
                    customer_id=self.customer.id,
                    asset=inc.asset,
                    reference=inc.reference,
                ),
                result_type=RelatedCases,
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=HISTORY_RETRY,
            )
        except ActivityError as err:
            self._event("history", f"earlier cases unavailable: {_failure_reason(err)}")
            return
        if not found.available:
            self._event("history", f"earlier cases unavailable: {found.note}")
            return
        self.status.related = found.cases
        same = sum(c.same_asset for c in found.cases)
        self._event(
            "history",
            f"{len(found.cases)} earlier case(s) of this customer or asset"
            + (f", {same} about {inc.asset}" if inc.asset else ""),
        )

    async def _diagnose_and_remedy(self) -> bool:
        remedy = self.playbook.remedy
        if remedy == "rebook":
            return await self._rebook_until_found()
        if remedy == "exchange":
            return await self._exchange()
        if remedy == "replace":
            return await self._repair_or_replace()
        if remedy == "callback":
            return await self._call_back()
        return await self._remake()

    # ---- support calls: a child workflow that calls back until someone answers
    async def _call_back(self) -> bool:
        inc = self.incident
        assert inc.call_at is not None and self.customer.phone is not None
        self._stage(Stage.REMEDY)
        channel = self.customer.preferred_channel
        self.status.callback = CallbackState()
        result: CallbackState = await workflow.execute_child_workflow(
            contract.CALLBACK_WORKFLOW,
            CallbackInput(
                case_id=self.status.case_id,
                customer_id=self.customer.id,
                first_name=self.customer.first_name,
                phone=self.customer.phone,
                written_channel=channel,
                written_to=self.customer.contact(channel) or "",
                at=inc.call_at,
                reason=f"{inc.item}: {inc.summary}",
                ops_contact=self.inp.ops_contact,
                settings=self.playbook.callbacks,
                notify_retry=self.inp.retries.notify,
            ),
            id=contract.callback_id(self.status.case_id),
            result_type=CallbackState,
        )
        self.status.callback = result
        self._remedy_attempts = len(result.attempts)
        history = "; ".join(
            f"call {a.number} due {a.due:%H:%M}: {a.outcome}"
            + (
                f" after {len(a.schedule_failures)} failed scheduling attempt(s) "
                f"({a.schedule_failures[-1]})"
                if a.schedule_failures
                else ""
            )
            for a in result.attempts
        )
        if result.state == "completed":
            self._action("called", f"support call completed on attempt {len(result.attempts)}")
            return True
        self._failed_attempts += 1
        await self._escalate(
            f"support call could not be completed, a person must call "
            f"{self.customer.phone}: {history}"
        )
        self._action(
            "handed_off",
            f"your case is with a colleague, who calls you personally on {self.customer.phone}",
        )
        return False

    # ---- devices: repair, or replace once the fault keeps coming back
    async def _repair_or_replace(self) -> bool:
        inc = self.incident
        assert inc.item is not None
        self._stage(Stage.DIAGNOSE)
        earlier = [
            c
            for c in self.status.related
            if c.same_asset and c.kind == inc.kind.value and c.fault == inc.fault
        ]
        report = len(earlier) + 1
        replace = report >= self.playbook.replace_on_report
        if inc.asset:
            self._event(
                "diagnosis",
                f"report {report} of {inc.fault or 'this fault'} on "
                f"{inc.asset}: " + ("replace" if replace else "repair"),
            )
        self._stage(Stage.REMEDY)
        self._remedy_attempts = 1
        try:
            if replace:
                done: Replacement = await self._call(
                    names.REPLACE_ITEM,
                    ReplaceRequest(
                        step="replace",
                        asset=inc.asset,
                        item=inc.item,
                        customer_id=self.customer.id,
                        order=inc.reference,
                    ),
                    Replacement,
                )
                better = "" if done.same_model else f" (a better model than {inc.item})"
                self._action(
                    "replaced",
                    f"replacement {done.sku}{better} shipped for "
                    f"{inc.item}" + (f" {inc.asset}" if inc.asset else ""),
                )
                await self._tell(
                    "remedy",
                    "Your replacement is on its way",
                    f"Dear {self.customer.first_name},\n\na new {done.sku}"
                    f"{better} is on its way to you, at no cost, with the "
                    "details we have on file.",
                )
            else:
                assert inc.asset is not None and inc.fault is not None
                await self._call(
                    names.BOOK_REPAIR,
                    RepairRequest(
                        step="repair",
                        asset=inc.asset,
                        item=inc.item,
                        fault=inc.fault,
                        customer_id=self.customer.id,
                    ),
                    ProductReceipt,
                )
                self._action(
                    "repair",
                    f"repair of {inc.item} {inc.asset} ({inc.fault}) "
                    "booked with a prepaid shipping box",
                )
                await self._tell(
                    "remedy",
                    "Your repair is booked",
                    f"Dear {self.customer.first_name},\n\nwe booked the repair "
                    f"of your {inc.item}; a prepaid shipping box is on its way.",
                )
        except ActivityError as err:
            self._failed_attempts += 1
            await self._escalate(
                f"{'replacement' if replace else 'repair'} failed: {_failure_reason(err)}"
            )
            return False
        return True

    # ---- car sharing: locate, re-book, escalate with an upgrade
    async def _rebook_until_found(self) -> bool:
        inc = self.incident
        assert inc.item is not None and inc.location is not None
        current = Booking(
            id=inc.reference, vehicle=inc.item, location=inc.location, origin="original"
        )
        self.status.bookings.append(current)
        self._stage(Stage.DIAGNOSE)
        found = await self._locate(current)
        while not found:
            current.status = "failed"
            self._failed_attempts += 1
            attempt = self._remedy_attempts + 1
            if attempt > self.playbook.remedy_attempts:
                await self._escalate(
                    f"no car after {self._remedy_attempts} re-booking(s): a person must take over"
                )
                await self._release_unused()
                return False
            upgrade = False
            if attempt > self.playbook.frontline_attempts:
                what = "with an upgrade" if self.playbook.upgrade_on_escalation else ""
                approved = await self._approval(
                    f"rebook-{attempt}",
                    f"{self._failed_attempts} car(s) missing; approve re-booking {what}".strip(),
                )
                if not approved:
                    await self._escalate(
                        f"re-booking {attempt} not approved: a person must take over"
                    )
                    await self._release_unused()
                    return False
                upgrade = self.playbook.upgrade_on_escalation
            self._stage(Stage.REMEDY)
            self._remedy_attempts = attempt
            try:
                booking: BookingResult = await self._call(
                    names.REBOOK_VEHICLE,
                    RebookRequest(
                        step=f"rebook:{attempt}",
                        customer_id=self.customer.id,
                        replaces=current.id,
                        like_vehicle=inc.item,
                        near=inc.location,
                        exclude=[b.vehicle for b in self.status.bookings],
                        upgrade=upgrade,
                    ),
                    BookingResult,
                )
            except ActivityError as err:
                await self._escalate(f"re-booking failed: {_failure_reason(err)}")
                await self._release_unused()
                return False
            current = Booking(
                id=booking.booking_id,
                vehicle=booking.vehicle,
                vehicle_class=booking.vehicle_class,
                location=booking.location,
            )
            self.status.bookings.append(current)
            upgraded = " (upgraded)" if upgrade else ""
            self._action(
                "rebooked",
                f"re-booked to {booking.vehicle}, {booking.vehicle_class}"
                f"{upgraded}, at {booking.location}",
            )
            self._claims_invited = self.playbook.compensation.reimburse_expenses
            claim_hint = (
                " If you need a taxi to get there, take one and send us the receipt: we "
                "reimburse it in full."
                if self._claims_invited
                else ""
            )
            await self._tell_all(
                f"rebook:{attempt}",
                "Your new car",
                f"Dear {self.customer.first_name},\n\nwe have booked {booking.vehicle} "
                f"({booking.vehicle_class}{upgraded}) for you at {booking.location}.{claim_hint}",
            )
            answer = await self._ask(
                f"pickup-{attempt}",
                f"Did you find {booking.vehicle} at {booking.location}?",
                ["picked_up", "missing"],
            )
            if answer is None:
                await self._escalate(
                    f"no answer whether {booking.vehicle} was found; assuming it was, an agent "
                    "should check"
                )
                found = True
            elif answer.answer == "picked_up":
                found = True
            else:
                self._stage(Stage.DIAGNOSE)
                found = await self._locate(current)
        current.status = "in_use"
        await self._release_unused()
        return True

    async def _locate(self, booking: Booking) -> bool:
        for attempt in range(1, self.playbook.locate_attempts + 1):
            try:
                located: LocateResult = await self._call(
                    names.LOCATE_VEHICLE,
                    LocateRequest(
                        step=f"locate:{booking.vehicle}:{attempt}",
                        vehicle=booking.vehicle,
                        booking=booking.id,
                    ),
                    LocateResult,
                )
            except ActivityError as err:
                await self._escalate(f"could not locate {booking.vehicle}: {_failure_reason(err)}")
                return False
            self._action("honked", f"sounded the horn of {booking.vehicle} at {located.location}")
            answer = await self._ask(
                f"locate-{booking.vehicle}-{attempt}",
                f"We just sounded the horn of {booking.vehicle}. Can you see or hear it now?",
                ["found", "not_found"],
            )
            if answer is not None and answer.answer == "found":
                return True
        return False

    async def _release_unused(self) -> None:
        """Release every booking not in use, newest first."""
        for booking in reversed(self.status.bookings):
            if booking.status not in ("active", "failed"):
                continue
            try:
                await self._call(
                    names.RELEASE_BOOKING,
                    ReleaseRequest(step=f"release:{booking.id}", booking=booking.id),
                    ProductReceipt,
                )
            except ActivityError as err:
                await self._escalate(
                    f"could not release booking {booking.id}: {_failure_reason(err)}"
                )
                continue
            booking.status = "released"
            self._action("released", f"released booking {booking.id} ({booking.vehicle})")

    # ---- retail: stock check, return label, substitute
    async def _exchange(self) -> bool:
        inc = self.incident
        assert inc.item is not None and inc.wanted is not None
        self._stage(Stage.DIAGNOSE)
        try:
            stock: StockResult = await self._call(
                names.CHECK_STOCK, StockRequest(sku=inc.wanted), StockResult
            )
        except ActivityError as err:
            await self._escalate(f"stock check for {inc.wanted} failed: {_failure_reason(err)}")
            self._refund_requested = True
            return False
        in_stock = stock.available > 0
        self._event("stock_check", f"{inc.wanted}: {stock.available} in stock")
        self._stage(Stage.REMEDY)
        self._remedy_attempts = 1
        try:
            label: ReturnLabel = await self._call(
                names.CREATE_RETURN,
                ReturnRequest(
                    step="return-label",
                    order=inc.reference,
                    sku=inc.item,
                    customer_id=self.customer.id,
                ),
                ReturnLabel,
            )
            self._action(
                "return_label",
                f"prepaid return label {label.label_id} and "
                f"pre-filled return form {label.form_id} for {inc.item}",
            )
        except ActivityError as err:
            await self._escalate(f"return label failed: {_failure_reason(err)}")
            label = None
        label_text = (
            f" Your prepaid return label is {label.label_id}; the return form "
            f"{label.form_id} is already filled in."
            if label
            else ""
        )
        if in_stock:
            try:
                await self._call(
                    names.SHIP_ITEM,
                    ShipRequest(
                        step="ship",
                        order=inc.reference,
                        sku=inc.wanted,
                        customer_id=self.customer.id,
                    ),
                    ProductReceipt,
                )
            except ActivityError as err:
                await self._escalate(f"shipping {inc.wanted} failed: {_failure_reason(err)}")
                self._refund_requested = True
                return False
            self._action("shipped", f"shipped {inc.wanted} for order {inc.reference}")
            await self._tell(
                "exchange",
                "The right item is on its way",
                f"Dear {self.customer.first_name},\n\n{inc.wanted} is on its way.{label_text}",
            )
            return True
        self._failed_attempts += 1
        answer = await self._ask(
            "substitute",
            f"{inc.wanted} is out of stock.{label_text} Would you like a substitute (answer "
            "'substitute' with its SKU as value) or your money back ('refund')?",
            ["substitute", "refund"],
        )
        if answer is None or answer.answer == "refund":
            self._refund_requested = True
            return False
        assert answer.value is not None
        try:
            quote: Quote = await self._call(
                names.QUOTE_SUBSTITUTE,
                QuoteRequest(original_sku=inc.wanted, substitute_sku=answer.value),
                Quote,
            )
        except ActivityError as err:
            await self._escalate(f"substitute {answer.value} failed: {_failure_reason(err)}")
            self._refund_requested = True
            return False
        if not quote.available:
            await self._escalate(f"substitute {answer.value} is out of stock too; refunding")
            self._refund_requested = True
            return False
        self._substitute = quote
        self._event(
            "substitute_chosen", f"{quote.substitute_sku}, price difference {quote.difference}"
        )
        return True

    # ---- coffee shop
    async def _remake(self) -> bool:
        inc = self.incident
        self._stage(Stage.REMEDY)
        self._remedy_attempts = 1
        try:
            await self._call(
                names.REMAKE_ORDER,
                RemakeRequest(step="remake", order=inc.reference, item=inc.item or "order"),
                ProductReceipt,
            )
        except ActivityError as err:
            await self._escalate(f"remake failed: {_failure_reason(err)}")
            self._failed_attempts += 1
            return False
        self._action("remade", f"remade {inc.item} for order {inc.reference}, at no cost")
        return True

    # ---- compensation
    async def _compensate(self) -> None:
        self._stage(Stage.COMPENSATE)
        policy = self.playbook.compensation
        if policy.reimburse_expenses and (self._claims_invited or self.status.claims):
            await self._ask(
                "claims",
                "Please send us every receipt you want reimbursed, then answer 'done'.",
                ["done"],
                wait=self.playbook.timeouts.claims_window,
            )
        self._claims_open = False
        items = compensation.plan(
            self.playbook,
            self.incident.paid,
            failed_attempts=self._failed_attempts,
            refund_requested=self._refund_requested,
            claims=self.status.claims,
            price_difference=self._substitute.difference if self._substitute else None,
        )
        await self._settle(items, request_id="compensation")

    async def _settle(self, items: list[CompensationItem], request_id: str) -> None:
        """Pay what the frontline may grant; above the limit (for the whole case) ask first."""
        currency = self.incident.paid.currency
        limit = self.status.discretion_limit
        granted = compensation.money_total(
            (i for i in self.status.compensation if i.state in ("approved", "paid")), currency
        )
        total = compensation.money_total(items, currency)
        self.status.compensation.extend(items)
        if granted + total > limit:
            self._approval_needed = True
            so_far = f" on top of {granted} already granted" if granted.amount else ""
            approved = await self._approval(
                request_id,
                f"compensation of {total}{so_far} is above the frontline limit of {limit}",
                amount=total,
            )
            headroom = limit - granted if granted <= limit else Money.zero(currency)
            allowed = items if approved else compensation.within_limit(items, headroom)
        else:
            self._event(
                "within_discretion",
                f"{total}{' more' if granted.amount else ''} within the frontline limit of {limit}",
            )
            allowed = items
        for item in items:
            item.state = "approved" if any(a is item for a in allowed) else "declined"
        for item in items:
            if item.state == "approved":
                await self._execute(item)
        if self._substitute is not None and request_id == "compensation":
            waiver = next((i for i in items if i.kind == "waiver"), None)
            waived = (
                waiver.amount
                if waiver and waiver.state == "approved" and waiver.amount
                else Money.zero(currency)
            )
            try:
                await self._call(
                    names.PLACE_SUBSTITUTE,
                    SubstituteRequest(
                        step="substitute",
                        order=self.incident.reference,
                        sku=self._substitute.substitute_sku,
                        customer_id=self.customer.id,
                        waived=waived,
                    ),
                    ProductReceipt,
                )
                self._action(
                    "substitute",
                    f"sent {self._substitute.substitute_sku} as a substitute",
                    amount=waived if waived.amount else None,
                )
                if waiver is not None and waiver.state == "approved":
                    waiver.state = "paid"
            except ActivityError as err:
                if waiver is not None:
                    waiver.state, waiver.failure = "failed", _failure_reason(err)
                await self._escalate(f"substitute order failed: {_failure_reason(err)}")

    async def _execute(self, item: CompensationItem) -> None:
        try:
            if item.kind in ("refund", "reimbursement", "coupon"):
                assert item.amount is not None
                receipt: PaymentReceipt = await workflow.execute_activity(
                    names.MAKE_PAYMENT,
                    PaymentRequest(
                        step=item.step,
                        kind=item.kind,
                        amount=item.amount,
                        customer_id=self.customer.id,
                        reference=self.incident.reference,
                        memo=item.description,
                    ),
                    result_type=PaymentReceipt,
                    start_to_close_timeout=CALL_TIMEOUT,
                    schedule_to_close_timeout=self.inp.retries.payment_deadline,
                    retry_policy=_retry(self.inp.retries.payment),
                )
                item.state, item.receipt = "paid", receipt.payment_id
                self._action("paid", item.description, amount=item.amount)
            elif item.kind == "perk":
                perk = item.step.partition(":")[2]
                granted: ProductReceipt = await self._call(
                    names.GRANT_PERK,
                    PerkRequest(step=item.step, customer_id=self.customer.id, perk=perk),
                    ProductReceipt,
                )
                item.state, item.receipt = "paid", granted.action_id
                self._action("perk", item.description)
        except ActivityError as err:
            item.state, item.failure = "failed", _failure_reason(err)
            await self._escalate(f"{item.description} failed: {item.failure}")

    # ---- confirm, follow up, reopen, document
    async def _confirm(self, round_: int) -> None:
        self._stage(Stage.CONFIRM)
        lines = [f"- {line}" for line in self._done] or ["- nothing yet"]
        paid = [i for i in self.status.compensation if i.state == "paid" and i.amount]
        open_items = [i for i in self.status.compensation if i.state == "failed"]
        body = [
            f"Dear {self.customer.first_name},",
            "",
            f"here is everything we did about {self.incident.reference} "
            f"(case {self.status.case_id}):",
            *lines,
        ]
        if paid:
            total = compensation.money_total(paid, self.incident.paid.currency)
            body += ["", f"In all we paid or credited you {total}."]
        if open_items:
            body += [
                "",
                "Still open, a colleague will contact you about:",
                *[f"- {i.description}: {i.amount}" for i in open_items],
            ]
        step = "confirm" if round_ == 1 else f"confirm:{round_}"
        await self._tell(step, "Confirmation: what we did", "\n".join(body))

    async def _follow_up_until_settled(self) -> Resolution:
        timeouts = self.playbook.timeouts
        if timeouts.follow_up_delay <= timedelta(0):
            return "resolved" if self._remedy_ok else "unresolved"
        round_ = 1
        while True:
            self._stage(Stage.FOLLOW_UP)
            self.status.follow_up_at = workflow.now() + timeouts.follow_up_delay
            await workflow.sleep(timeouts.follow_up_delay)
            self.status.follow_up_at = None
            answer = await self._ask(
                f"follow-up-{round_}",
                "Is everything put right for you now?",
                ["satisfied", "not_satisfied"],
                wait=timeouts.follow_up_reply,
                reminders=timeouts.follow_up_reminders,
            )
            if answer is None:
                self._event("unreachable", "no answer to the follow-up or its reminders")
                return "unreachable"
            if answer.answer == "satisfied":
                return "resolved"
            if round_ > self.playbook.max_reopens:
                await self._escalate(
                    f"customer still not satisfied after {round_} follow-ups: "
                    f"{answer.comment or 'no comment'}"
                )
                return "unresolved"
            self.status.reopened += 1
            self._event("reopened", answer.comment or "customer not satisfied")
            label = f"resolution:reopen-{round_}"
            self._sla.start("resolution", workflow.now(), label=label)
            await self._reopen(round_, answer)
            round_ += 1
            await self._confirm(round_=round_)
            self._sla.stop(label, workflow.now())

    async def _reopen(self, round_: int, answer: CustomerAnswer) -> None:
        self._stage(Stage.COMPENSATE)
        extra = self.playbook.compensation.reopen_goodwill
        currency = self.incident.paid.currency
        if extra <= 0:
            await self._escalate(f"case reopened: {answer.comment or 'customer not satisfied'}")
            return
        item = CompensationItem(
            step=f"coupon:reopen-{round_}",
            kind="coupon",
            description="extra goodwill coupon",
            amount=Money(amount=extra, currency=currency),
        )
        await self._settle([item], request_id=f"reopen-{round_}")

    async def _document(self, resolution: Resolution) -> CaseOutcome:
        self._stage(Stage.DOCUMENT)
        now = workflow.now()
        currency = self.incident.paid.currency
        paid = [i for i in self.status.compensation if i.state == "paid"]
        goodwill = [i for i in paid if i.kind in ("coupon", "waiver")]
        first = self.status.first_contact_at
        outcome = CaseOutcome(
            case_id=self.status.case_id,
            kind=self.status.kind,
            cause=self._cause,
            resolution=resolution,
            remedy_attempts=self._remedy_attempts,
            remedy_succeeded=self._remedy_ok,
            paid_out=compensation.money_total(paid, currency),
            goodwill=compensation.money_total(goodwill, currency),
            escalations=len(self.status.escalations),
            reopened=self.status.reopened,
            approval_needed=self._approval_needed,
            opened_at=self.status.opened_at,
            first_contact_at=first,
            closed_at=now,
            seconds_to_first_contact=(
                (first - self.status.opened_at).total_seconds() if first else None
            ),
            seconds_to_close=(now - self.status.opened_at).total_seconds(),
        )
        await self._call(names.RECORD_OUTCOME, outcome, None)
        self.status.resolution = resolution
        self.status.closed_at = now
        # Later cases read the resolution from the memo instead of fetching this history.
        # Added after cases were running: old histories replay without it (see README).
        if workflow.patched("memo-resolution"):
            workflow.upsert_memo({"resolution": resolution})
        self._stage(Stage.CLOSED)
        return outcome

    # ------------------------------------------------------------------ updates and query
    @workflow.query(name=contract.STATUS_QUERY)
    def status_query(self) -> CaseStatus:
        return self.status

    @workflow.update(name=contract.ANSWER)
    def answer(self, answer: CustomerAnswer) -> Accepted:
        self._answers[answer.question_id] = answer
        self._event(
            "answer",
            f"{answer.question_id}: {answer.answer}"
            + (f" ({answer.value})" if answer.value else ""),
            by=str(answer.by),
        )
        return Accepted(case_id=self.status.case_id, detail=f"answer {answer.answer!r} taken")

    @answer.validator
    def _check_answer(self, answer: CustomerAnswer) -> None:
        self._check_open()
        if answer.by.role not in ("customer", "agent"):
            _reject(f"answers come from the customer or an agent, not a {answer.by.role}")
        question = self.status.question
        if question is None:
            _reject("the case is not waiting for an answer")
        assert question is not None
        if answer.question_id != question.id:
            _reject(f"the open question is {question.id!r}, not {answer.question_id!r}")
        if answer.answer not in question.choices:
            _reject(f"answer must be one of {', '.join(question.choices)}")
        if answer.answer == "substitute" and not answer.value:
            _reject("a substitute needs its SKU as value")

    @workflow.update(name=contract.SUBMIT_CLAIM)
    def submit_claim(self, claim: ExpenseClaim) -> Accepted:
        self.status.claims.append(claim)
        self._event(
            "claim", f"{claim.claim_id}: {claim.description}", amount=claim.amount, by=str(claim.by)
        )
        return Accepted(
            case_id=self.status.case_id,
            detail=f"claim {claim.claim_id} for {claim.amount} accepted",
        )

    @submit_claim.validator
    def _check_claim(self, claim: ExpenseClaim) -> None:
        self._check_open()
        policy = self.playbook.compensation
        if not policy.reimburse_expenses:
            _reject(f"{self.status.kind} cases do not reimburse expenses")
        if not self._claims_open:
            _reject("expense claims are closed: the compensation has already been decided")
        if claim.by.role not in ("customer", "agent"):
            _reject(f"claims come from the customer or an agent, not a {claim.by.role}")
        currency = self.incident.paid.currency
        if claim.amount.currency != currency:
            _reject(f"claim is in {claim.amount.currency} but this case is in {currency}")
        if claim.amount.amount <= 0:
            _reject("a claim must be for more than zero")
        if claim.amount.amount > policy.max_claim:
            _reject(
                f"{claim.amount} is above the per-claim maximum of {policy.max_claim} "
                f"{currency}: a manager must handle it"
            )
        if any(c.claim_id == claim.claim_id for c in self.status.claims):
            _reject(f"claim {claim.claim_id} was already submitted")
        if len(self.status.claims) >= policy.max_claims:
            _reject(f"at most {policy.max_claims} claims per case")

    @workflow.update(name=contract.DECIDE)
    def decide(self, decision: ApprovalDecision) -> Accepted:
        self._decisions[decision.request_id] = decision
        verdict = "approved" if decision.approved else "rejected"
        self._event(
            "approval",
            f"{decision.request_id} {verdict}" + (f": {decision.note}" if decision.note else ""),
            by=str(decision.by),
        )
        return Accepted(case_id=self.status.case_id, detail=f"{decision.request_id} {verdict}")

    @decide.validator
    def _check_decision(self, decision: ApprovalDecision) -> None:
        self._check_open()
        if decision.by.role != "manager":
            _reject(f"approvals need the manager role; {decision.by} is not a manager")
        pending = self.status.approval
        if pending is None:
            _reject("nothing is waiting for approval")
        assert pending is not None
        if decision.request_id != pending.id:
            _reject(f"the pending approval is {pending.id!r}, not {decision.request_id!r}")

    @workflow.update(name=contract.ADD_NOTE)
    def add_note(self, note: AgentNote) -> Accepted:
        self.status.notes.append(f"{note.by}: {note.text}")
        self._event("note", note.text, by=str(note.by))
        return Accepted(case_id=self.status.case_id, detail="note added")

    @add_note.validator
    def _check_note(self, note: AgentNote) -> None:
        self._check_open()
        if note.by.role not in ("agent", "manager"):
            _reject(f"notes come from agents and managers, not a {note.by.role}")

    @workflow.update(name=contract.ASSIGN)
    def assign(self, req: AssignCase) -> Accepted:
        self.status.owner = str(req.to)
        self._owner_contact = req.contact
        self._event("assigned", f"owner is now {req.to}", by=str(req.by))
        return Accepted(case_id=self.status.case_id, detail=f"assigned to {req.to}")

    @assign.validator
    def _check_assign(self, req: AssignCase) -> None:
        self._check_open()
        if req.by.role not in ("agent", "manager"):
            _reject(f"cases are assigned by agents and managers, not a {req.by.role}")
        if req.to.role not in ("agent", "manager"):
            _reject(f"a case is owned by an agent or a manager, not a {req.to.role}")
        if self.status.owner == str(req.to):
            _reject(f"the case is already assigned to {req.to}")

    @workflow.update(name=contract.ESCALATE)
    async def escalate(self, req: EscalateCase) -> Accepted:
        await self._escalate(f"{req.reason} (escalated by {req.by})")
        return Accepted(case_id=self.status.case_id, detail="escalated to ops")

    @escalate.validator
    def _check_escalate(self, req: EscalateCase) -> None:
        self._check_open()
        if req.by.role not in ("agent", "manager"):
            _reject(f"escalations come from agents and managers, not a {req.by.role}")

    @workflow.update(name=contract.CANCEL)
    def cancel(self, req: CancelCase) -> Accepted:
        self._cancel = req
        assert self._main is not None
        self._main.cancel()
        return Accepted(
            case_id=self.status.case_id,
            detail="cancelled: reservations are released and the customer told",
        )

    @cancel.validator
    def _check_cancel(self, req: CancelCase) -> None:
        self._check_open()
        if req.by.role not in ("agent", "manager"):
            _reject(f"cases are cancelled by agents and managers, not a {req.by.role}")
        if self._cancel is not None:
            _reject(f"case {self.status.case_id} is already being cancelled")
        if self._main is None or self._main.done():
            _reject(f"case {self.status.case_id} is closing and can no longer be cancelled")

    def _check_open(self) -> None:
        if self.status.stage in (Stage.DOCUMENT, Stage.CLOSED):
            _reject(f"case {self.status.case_id} is closed")

    # ------------------------------------------------------------------ helpers
    def _stage(self, stage: Stage) -> None:
        if self.status.stage != stage:
            self.status.stage = stage
            self._event("stage", stage.value)
            workflow.upsert_search_attributes([STAGE_KEY.value_set(stage.value)])

    def _event(
        self, kind: str, detail: str, *, amount: Money | None = None, by: str | None = None
    ) -> None:
        self.status.events.append(
            Event(at=workflow.now(), kind=kind, detail=detail, amount=amount, by=by)
        )

    def _action(self, kind: str, detail: str, *, amount: Money | None = None) -> None:
        """Something done for the customer: it goes into the written confirmation."""
        self._event(kind, detail, amount=amount)
        self._done.append(f"{detail}: {amount}" if amount else detail)

    async def _call(self, activity: str, arg: Any, result_type: type | None) -> Any:
        return await workflow.execute_activity(
            activity,
            arg,
            result_type=result_type,
            start_to_close_timeout=CALL_TIMEOUT,
            retry_policy=_retry(self.inp.retries.product),
        )

    async def _send(
        self,
        step: str,
        channel: Channel,
        to: str,
        subject: str,
        body: str,
    ) -> MessageReceipt:
        return await workflow.execute_activity(
            names.SEND_MESSAGE,
            MessageRequest(
                step=step,
                channel=channel,
                to=to,
                subject=subject,
                body=body,
                customer_id=self.customer.id,
            ),
            result_type=MessageReceipt,
            start_to_close_timeout=CALL_TIMEOUT,
            retry_policy=_retry(self.inp.retries.notify),
        )

    async def _tell(
        self, step: str, subject: str, body: str, channel: Channel | None = None
    ) -> bool:
        channel = channel or self.customer.preferred_channel
        to = self.customer.contact(channel)
        if to is None:
            self._event("skipped_message", f"no {channel} contact for {subject!r}")
            return False
        try:
            await self._send(f"{step}:{channel}", channel, to, subject, body)
        except ActivityError as err:
            await self._escalate(
                f"could not reach the customer by {channel}: {_failure_reason(err)}"
            )
            return False
        if self.status.first_contact_at is None:
            self.status.first_contact_at = workflow.now()
            self._sla.stop("first_contact", workflow.now())
        self._event("message", f"{channel}: {subject}")
        return True

    async def _tell_all(self, step: str, subject: str, body: str) -> None:
        channels: list[Channel] = []
        for ch in self.playbook.notify_on_remedy:
            resolved = self.customer.preferred_channel if ch == "preferred" else ch
            if resolved not in channels:
                channels.append(resolved)
        for channel in channels:
            await self._tell(step, subject, body, channel=channel)

    async def _ask(
        self,
        qid: str,
        prompt: str,
        choices: list[str],
        *,
        wait: timedelta | None = None,
        reminders: int = 0,
    ) -> CustomerAnswer | None:
        """Ask the customer on their channel; None when every wait ran out."""
        wait = wait or self.playbook.timeouts.customer_reply
        body = f"{prompt}\n\nPlease answer: {' / '.join(choices)} (question {qid})."
        for attempt in range(reminders + 1):
            step = f"ask:{qid}" if attempt == 0 else f"ask:{qid}:reminder-{attempt}"
            subject = "A question about your case" if attempt == 0 else "Reminder: your case"
            await self._tell(step, subject, body)
            now = workflow.now()
            if self.status.question is None:  # open once it has been asked
                self.status.question = Question(
                    id=qid,
                    prompt=prompt,
                    choices=choices,
                    asked_at=now,
                    deadline=now + wait,
                    on_timeout="no answer",
                )
                self._resolution_clock(running=False)
            else:
                self.status.question.deadline = now + wait
            try:
                await workflow.wait_condition(lambda: qid in self._answers, timeout=wait)
                break
            except TimeoutError:
                self._event("no_answer", f"{qid}: no answer within {wait}")
        self.status.question = None
        self._resolution_clock(running=True)
        return self._answers.get(qid)

    def _resolution_clock(self, *, running: bool) -> None:
        """Waiting for the customer does not count against the time to resolution."""
        for clock in self._sla.clocks:
            if clock.name == "resolution" and clock.stopped_at is None:
                if running:
                    self._sla.resume(clock.label, workflow.now())
                else:
                    self._sla.pause(clock.label, workflow.now())

    async def _approval(self, rid: str, reason: str, amount: Money | None = None) -> bool:
        """Ask a manager; each timeout escalates one level, the last one declines."""
        timeouts = self.playbook.timeouts
        now = workflow.now()
        self.status.approval = ApprovalRequest(
            id=rid,
            reason=reason,
            amount=amount,
            asked_at=now,
            deadline=now + timeouts.approval,
        )
        self._event("approval_requested", f"{rid}: {reason}", amount=amount)
        self._sla.start("approval_decision", now, label=f"approval:{rid}")
        await self._notify_ops(
            f"approval:{rid}",
            f"Approval needed: {self.status.case_id}",
            f"{reason}. Decide with: makegood approve {self.status.case_id} "
            f"{rid} --as manager:<you> [--reject]",
        )
        decided = False
        for level in range(timeouts.approval_escalations + 1):
            try:
                await workflow.wait_condition(
                    lambda: rid in self._decisions, timeout=timeouts.approval
                )
                decided = True
                break
            except TimeoutError:
                if level < timeouts.approval_escalations:
                    self.status.approval.level = level + 1
                    self.status.approval.deadline = workflow.now() + timeouts.approval
                    await self._escalate(
                        f"approval {rid} undecided after {timeouts.approval}; escalated to "
                        f"level {level + 1}",
                        step=f"approval:{rid}:level-{level + 1}",
                    )
        self.status.approval = None
        self._sla.stop(f"approval:{rid}", workflow.now())
        if not decided:
            await self._escalate(
                f"approval {rid} never decided: treated as declined", step=f"approval:{rid}:expired"
            )
            return False
        return self._decisions[rid].approved

    async def _notify_ops(
        self, step: str, subject: str, body: str, *, to: str | None = None
    ) -> None:
        try:
            await self._send(step, "email", to or self.inp.ops_contact, subject, body)
        except ActivityError as err:
            # Nothing left to tell: the failure stays visible in history and status.
            self._event("ops_unreachable", _failure_reason(err))

    async def _escalate(self, reason: str, *, step: str | None = None) -> None:
        self.status.escalations.append(
            Escalation(at=workflow.now(), reason=reason, to=self.inp.ops_contact)
        )
        self._event("escalated", reason)
        workflow.logger.warning("case escalated: %s", reason)
        n = len(self.status.escalations)
        await self._notify_ops(
            step or f"escalation:{n}",
            f"Escalated: {self.status.case_id}",
            f"{reason}\n\nCase {self.status.case_id}, ticket "
            f"{self.ticket.id}, stage {self.status.stage.value}.",
        )
