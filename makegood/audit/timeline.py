"""A case's history as a readable account: what was reported, said, done, paid and decided.

Read from the Temporal event history alone (the audit record), never from the case's own
status, so it shows what actually happened, including every retry and its reason.

Every line is classified by what the history says in types, never by wording: the event
type, the workflow type, the activity (its spec in `domain/calls.py`), the update or signal name
(`domain/contract.py`) and, for a message, its logical step (`domain/steps.py`), so the
workflow's wording can change without the account changing its meaning.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter

from makegood.audit import crosscheck, markers
from makegood.audit.lines import PRODUCT, receipt_check
from makegood.domain import calls, contract, ids, steps
from makegood.domain.actions import (
    AgentNote,
    ApprovalDecision,
    AssignCase,
    CancelCase,
    CustomerAnswer,
    EscalateCase,
    ExpenseClaim,
)
from makegood.domain.case import CallbackInput, CallStatus, CaseInput, CaseOutcome
from makegood.domain.money import Money
from makegood.domain.provider import MessageRequest
from makegood.domain.ticket import IncidentKind

UPDATES: dict[str, type[BaseModel]] = {
    contract.ANSWER: CustomerAnswer,
    contract.SUBMIT_CLAIM: ExpenseClaim,
    contract.DECIDE: ApprovalDecision,
    contract.ADD_NOTE: AgentNote,
    contract.ASSIGN: AssignCase,
    contract.ESCALATE: EscalateCase,
    contract.CANCEL: CancelCase,
}


@dataclass
class Line:
    at: datetime
    kind: str
    text: str
    workflow_id: str
    event_id: int
    amount: str | None = None
    key: str | None = None
    by: str | None = None
    said: str | None = None  # a message's whole text, as the customer received it


def failure_text(failure: Failure) -> str:
    """A failure's message: from its encoded attributes (decrypted with the history) when the
    worker moved it there, as Makegood's converter does, else from the plain field."""
    encoded = failure.encoded_attributes
    if encoded.data:
        try:
            return str(json.loads(encoded.data).get("message", failure.message))
        except (ValueError, AttributeError):
            return failure.message
    return failure.message


def _decode(payloads: Iterable[Payload], model: type[BaseModel] | None) -> Any:
    items = list(payloads)
    if not items:
        return None
    types = [model] if model is not None else None
    return pydantic_data_converter.payload_converter.from_payloads(items, types)[0]


def _at(event: HistoryEvent) -> datetime:
    return event.event_time.ToDatetime().replace(tzinfo=None)


class _Reader:
    def __init__(self, history: WorkflowHistory) -> None:
        self.wid = history.workflow_id
        self.history = history
        self.workflow_type = ""
        self.scheduled: dict[int, tuple[str, Any]] = {}
        self.retried: dict[int, tuple[int, str]] = {}
        self.deliveries: set[str] = set()
        self.lines: list[Line] = []
        self.inp: CaseInput | None = None
        self.vehicles: dict[str, str] = {}  # booking id -> the vehicle booked
        self.paid = Decimal(0)  # the payments' running subtotal
        self.booked_calls: dict[str, int] = {}  # call id -> which attempt of the call-back
        self.deeds: list[crosscheck.Deed] = []  # what was done, to check the confirmation by
        self.confirmations: list[crosscheck.Confirmation] = []

    def add(self, event: HistoryEvent, kind: str, text: str, **extra: Any) -> None:
        self.lines.append(Line(_at(event), kind, text, self.wid, event.event_id, **extra))

    def read(self) -> list[Line]:
        for event in self.history.events:
            handler = getattr(self, f"_{EventType.Name(event.event_type).lower()}", None)
            if handler is not None:
                handler(event)
        return self.lines

    # ---- the case itself
    def _event_type_workflow_execution_started(self, e: HistoryEvent) -> None:
        attrs = e.workflow_execution_started_event_attributes
        self.workflow_type = attrs.workflow_type.name
        if self.workflow_type == contract.CALLBACK_WORKFLOW:
            cb: CallbackInput = _decode(attrs.input.payloads, CallbackInput)
            self.add(
                e,
                "callback",
                f"call-back started: call {cb.phone} at "
                f"{cb.at:%Y-%m-%d %H:%M} UTC, up to {cb.settings.calls} calls",
            )
            return
        inp: CaseInput = _decode(attrs.input.payloads, CaseInput)
        self.inp = inp
        t, inc = inp.ticket, inp.ticket.incident
        if inc.kind == IncidentKind.CAR_MISSING and inc.item:
            self.vehicles[inc.reference] = inc.item  # the reservation the member came for
        for booking in inp.carried.status.bookings if inp.carried else []:
            self.vehicles[booking.id] = booking.vehicle
        if inp.carried is not None:
            done = inp.carried.checkpoint.replace("_", " ")
            self.add(
                e,
                "continued",
                f"run {inp.carried.run} of the case goes on after: {done} "
                f"({len(inp.carried.status.events)} event(s) carried over)",
            )
            return
        self.add(
            e,
            "report",
            f"ticket {t.id} from {t.source}: {inc.kind.value} about "
            f"{inc.reference}, {inc.summary} (customer {t.customer.id}, paid {inc.paid}; "
            f"playbooks {inp.playbook_version})",
            amount=str(inc.paid),
        )

    def _event_type_workflow_execution_continued_as_new(self, e: HistoryEvent) -> None:
        self.add(e, "continued", "history long: the case continues in a new run")

    def _event_type_workflow_execution_completed(self, e: HistoryEvent) -> None:
        attrs = e.workflow_execution_completed_event_attributes
        if self.workflow_type == contract.CALLBACK_WORKFLOW:
            self.add(e, "callback", "call-back finished")
            return
        out: CaseOutcome = _decode(attrs.result.payloads, CaseOutcome)
        self.add(
            e,
            "closed",
            f"closed {out.resolution}: paid out {out.paid_out} (goodwill "
            f"{out.goodwill}), {out.remedy_attempts} remedy attempt(s), "
            f"{out.escalations} escalation(s), re-opened {out.reopened}x"
            + (f"; remedy {out.remedy}" if out.remedy else "")
            + (f", satisfaction {out.satisfaction}" if out.satisfaction else "")
            + (
                "; unconfirmed, nobody answered: "
                + ", ".join(q.partition(":")[0] for q in out.unconfirmed)
                if out.unconfirmed
                else ""
            ),
            amount=str(out.paid_out),
        )

    def _event_type_upsert_workflow_search_attributes(self, e: HistoryEvent) -> None:
        fields = e.upsert_workflow_search_attributes_event_attributes.search_attributes
        for name, payload in fields.indexed_fields.items():
            value = _decode([payload], None)
            if name == contract.SA_STAGE:
                self.add(e, "stage", f"stage: {value}")
            elif name == contract.SA_SLA:
                self.add(e, "sla", f"SLA level: {value}")

    # ---- activities: messages, product actions, bookings, payments, and their retries
    def _event_type_activity_task_scheduled(self, e: HistoryEvent) -> None:
        attrs = e.activity_task_scheduled_event_attributes
        name = attrs.activity_type.name
        spec = calls.BY_NAME.get(name)
        request = _decode(attrs.input.payloads, spec.request if spec else None)
        self.scheduled[e.event_id] = (name, request)

    def _event_type_activity_task_started(self, e: HistoryEvent) -> None:
        attrs = e.activity_task_started_event_attributes
        if attrs.attempt > 1:
            self.retried[attrs.scheduled_event_id] = (
                attrs.attempt,
                failure_text(attrs.last_failure),
            )

    def _retries(self, e: HistoryEvent, scheduled_id: int, name: str) -> None:
        if scheduled_id in self.retried:
            attempt, reason = self.retried[scheduled_id]
            self.add(
                e,
                "retry",
                f"{name} needed {attempt} attempts; the last failure before it: {reason}",
            )

    def _event_type_activity_task_failed(self, e: HistoryEvent) -> None:
        attrs = e.activity_task_failed_event_attributes
        name, req = self.scheduled.get(attrs.scheduled_event_id, ("activity", None))
        self._retries(e, attrs.scheduled_event_id, name)
        what = f" ({req.step})" if req is not None and hasattr(req, "step") else ""
        self.add(e, "failure", f"{name}{what} failed: {failure_text(attrs.failure)}")

    def _event_type_activity_task_timed_out(self, e: HistoryEvent) -> None:
        attrs = e.activity_task_timed_out_event_attributes
        name, _ = self.scheduled.get(attrs.scheduled_event_id, ("activity", None))
        self._retries(e, attrs.scheduled_event_id, name)
        self.add(e, "failure", f"{name} timed out: {failure_text(attrs.failure)}")

    def _event_type_activity_task_completed(self, e: HistoryEvent) -> None:
        attrs = e.activity_task_completed_event_attributes
        name, req = self.scheduled.get(attrs.scheduled_event_id, ("activity", None))
        self._retries(e, attrs.scheduled_event_id, name)
        spec = calls.BY_NAME.get(name)
        self._completed(
            e, name, req, _decode(attrs.result.payloads, spec.result_type if spec else None)
        )

    def _event_type_marker_recorded(self, e: HistoryEvent) -> None:
        """A local activity (the case's bookkeeping): its request is not in the history."""
        local = markers.local_activity(e)
        if local is None:
            return
        tries = f" after {local.attempt} attempts" if local.attempt > 1 else ""
        if local.failure is not None:
            self.add(e, "failure", f"{local.name} failed{tries}: {failure_text(local.failure)}")
            return
        if tries:
            self.add(e, "retry", f"{local.name} needed {local.attempt} attempts")
        spec = calls.BY_NAME.get(local.name)
        self._completed(
            e, local.name, None, _decode(local.result, spec.result_type if spec else None)
        )

    def _completed(self, e: HistoryEvent, name: str, req: Any, result: Any) -> None:
        key = (
            ids.idempotency_key(self.wid, req.step)
            if req is not None and hasattr(req, "step")
            else None
        )
        if name == calls.SEND_MESSAGE.name:
            self._message(e, req, key)
        elif name == calls.MAKE_PAYMENT.name:
            self.paid += req.amount.amount
            subtotal = Money(amount=self.paid, currency=req.amount.currency)
            self.add(
                e,
                "payment",
                f"{req.kind} of {req.amount} to {req.customer_id} "
                f"({req.memo}), payment {result.payment_id}; paid so far {subtotal}",
                amount=str(req.amount),
                key=key,
            )
        elif name == calls.REBOOK_VEHICLE.name:
            self.vehicles[result.booking_id] = result.vehicle
            self.add(
                e,
                "booking",
                f"booked {result.vehicle} ({result.vehicle_class}) at "
                f"{result.location}, booking {result.booking_id}"
                + (", upgraded" if req.upgrade else ""),
                key=key,
            )
        elif name == calls.RELEASE_BOOKING.name:
            vehicle = self.vehicles.get(req.booking)
            self.add(
                e,
                "release",
                f"released booking {req.booking}" + (f" ({vehicle})" if vehicle else ""),
                key=key,
            )
        elif name == calls.SCHEDULE_CALL.name:
            self.add(
                e,
                "callback",
                f"call {result.call_id} booked for {req.at:%Y-%m-%d %H:%M} UTC",
                key=key,
            )
        elif name == calls.FIND_RELATED_CASES.name:
            self.add(
                e,
                "history",
                f"earlier cases unavailable: {result.note}"
                if not result.available
                else f"{len(result.cases)} earlier case(s) of this customer or asset"
                + "".join(f"; {c.case_id}" for c in result.cases),
            )
        elif name == calls.REGISTER_CLAIM.name:
            self.add(e, "receipt", receipt_check(req, result))
        elif name == calls.RECORD_OUTCOME.name:
            self.add(e, "documented", "outcome recorded")
        elif name in PRODUCT:
            self.add(e, "product", PRODUCT[name](req, result), key=key)
        if name == calls.SCHEDULE_CALL.name:
            self.booked_calls[result.call_id] = crosscheck.call_attempt(req.step)
        said = self.lines[-1].text if self.lines and self.lines[-1].event_id == e.event_id else name
        for deed in crosscheck.deeds_of(name, req, result, _at(e), e.event_id, said):
            self.deed(deed)

    def deed(self, deed: crosscheck.Deed) -> None:
        deed.workflow_id = self.wid
        self.deeds.append(deed)

    def _message(self, e: HistoryEvent, req: MessageRequest, key: str | None) -> None:
        """A message's purpose is its step's: who it went to says nothing (an SLA warning goes
        to the case owner's own address, not only to the ops contact)."""
        purpose = steps.ops_purpose(req.step)
        if purpose is None:
            self.add(
                e, "message", f"{req.channel} to {req.to}: {req.subject}", key=key, said=req.body
            )
            if crosscheck.is_confirmation(req.step):
                self.confirmations.append(
                    crosscheck.Confirmation(
                        _at(e), e.event_id, req.body, crosscheck.listed(req.body), self.wid
                    )
                )
            return
        if purpose == "escalation" and self.inp is not None:
            # A person took the case over: what the confirmation may say about the hand-off.
            for name in (self.inp.ticket.incident.reference, self.inp.ticket.customer.phone):
                if name:
                    what = f"escalated to {req.to}"
                    self.deed(crosscheck.Deed(_at(e), e.event_id, what, (name,), required=False))
        first = req.body.splitlines()[0] if req.body else req.subject
        if purpose == "approval":
            # The request's reason, without the how-to-decide hint the manager was sent.
            reason = first.split(". Decide with:")[0]
            self.add(e, "approval", f"approval asked of {req.to}: {reason}", key=key)
        else:
            self.add(e, purpose, f"to {req.to}: {first}", key=key)

    # ---- people and providers
    def _event_type_workflow_execution_update_accepted(self, e: HistoryEvent) -> None:
        request = e.workflow_execution_update_accepted_event_attributes.accepted_request
        name = request.input.name
        action = _decode(request.input.args.payloads, UPDATES.get(name))
        amount: str | None = None
        match action:
            case CustomerAnswer():
                kind = "answer"
                text = f"answered {action.question_id}: {action.answer}" + (
                    f" ({action.value})" if action.value else ""
                )
            case ExpenseClaim():
                kind, amount = "claim", str(action.amount)
                text = f"claim {action.claim_id}: {action.description}"
            case ApprovalDecision():
                kind = "approval"
                verdict = "approved" if action.approved else "rejected"
                text = f"{action.request_id} {verdict}" + (
                    f": {action.note}" if action.note else ""
                )
            case AgentNote():
                kind, text = "note", f"note: {action.text}"
            case AssignCase():
                kind, text = "operator", f"assigned to {action.to}"
            case EscalateCase():
                kind, text = "operator", f"escalated: {action.reason}"
            case CancelCase():
                kind, text = "operator", f"cancelled: {action.reason}"
            case _:
                self.add(e, "update", f"{name}")
                return
        self.add(e, kind, text, by=str(action.by), amount=amount)

    def _event_type_workflow_execution_signaled(self, e: HistoryEvent) -> None:
        attrs = e.workflow_execution_signaled_event_attributes
        if attrs.signal_name == contract.CALL_STATUS_SIGNAL:
            status: CallStatus = _decode(attrs.input.payloads, CallStatus)
            again = " again, ignored" if status.event_id in self.deliveries else ""
            self.deliveries.add(status.event_id)
            attempt = self.booked_calls.get(status.call_id)
            if status.status == "completed" and attempt is not None:
                what = f"call {status.call_id} completed"
                self.deed(
                    crosscheck.Deed(
                        _at(e), e.event_id, what, (f"attempt {attempt}",), required=False
                    )
                )
            self.add(
                e,
                "call_status",
                f"telephony: call {status.call_id} {status.status} "
                f"(delivery {status.event_id}{again})",
            )


def timeline(histories: Iterable[WorkflowHistory]) -> list[Line]:
    """Every history of a case (the case and its call-back), as one chronological account."""
    lines: list[Line] = []
    readers = [_Reader(history) for history in histories]
    for reader in readers:
        lines += reader.read()
    deeds = [deed for reader in readers for deed in reader.deeds]
    for reader in readers:
        for sent in reader.confirmations:
            problems = crosscheck.check(sent, deeds)
            lines.append(
                Line(
                    sent.at,
                    "check",
                    crosscheck.report(sent, problems),
                    sent.workflow_id,
                    sent.event_id,
                    said="\n".join(problems) or None,
                )
            )
    lines.sort(key=lambda line: (line.at, ids.is_callback(line.workflow_id), line.event_id))
    return lines
