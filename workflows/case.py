"""What every stage of a case shares: its status, its own record of events and of what was done
for the customer, and the ways out to activities (product calls, messages, escalations).

One `Case` per RecoveryWorkflow run. Stages hold a reference to it and keep their own state;
nothing here decides the recovery.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Literal, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

with workflow.unsafe.imports_passed_through():
    from makegood.domain import calls, contract, steps
    from makegood.domain.calls import ActivitySpec
    from makegood.domain.case import CallbackInput, CaseInput, CaseStatus, Escalation, Event, Stage
    from makegood.domain.money import Money
    from makegood.domain.playbook import Backoff
    from makegood.domain.provider import MessageReceipt, MessageRequest, ReleaseRequest
    from makegood.domain.sla import SlaBook
    from makegood.domain.ticket import Channel
    from makegood.domain.wording import released_line

Req = TypeVar("Req")
Res = TypeVar("Res")

CALL_TIMEOUT = timedelta(seconds=30)
# Every activity heartbeats (`activities.heartbeat`): a worker that died mid-call is noticed
# this soon, and the call retried on another, not after the whole CALL_TIMEOUT.
HEARTBEAT_TIMEOUT = timedelta(seconds=8)
CANCEL_PATCH = "cancel-ends-the-call"
# Bookkeeping calls (`ActivitySpec.local`) run as local activities from this patch on; cases
# that started before it replay them as the activities they were.
LOCAL_PATCH = "local-bookkeeping"
STAGE_KEY = SearchAttributeKey.for_keyword(contract.SA_STAGE)


def retry_policy(backoff: Backoff) -> RetryPolicy:
    return RetryPolicy(
        initial_interval=backoff.initial,
        maximum_interval=backoff.maximum,
        maximum_attempts=backoff.attempts,
    )


def failure_reason(err: ActivityError) -> str:
    """The provider's reason for a failed call, saying whether retries were spent on it."""
    cause = err.cause
    if isinstance(cause, ApplicationError):
        retried = "" if cause.non_retryable else " (gave up after retries)"
        return f"{cause.message}{retried}"
    return str(cause or err)


async def execute(
    spec: ActivitySpec[Req, Res],
    arg: Req,
    *,
    retry: RetryPolicy,
    start_to_close: timedelta = CALL_TIMEOUT,
    schedule_to_close: timedelta | None = None,
    task_queue: str | None = None,
) -> Res:
    """Run the activity a spec names: its request and result types are checked statically.

    An activity cancelled because its caller was cancelled (an operator cancelled the case, the
    case closed under a watcher) ends the caller too, instead of passing for a provider failure
    that a stage would escalate and carry on from.
    """
    try:
        if spec.local and workflow.patched(LOCAL_PATCH):
            raw = await _local(spec.name, arg, retry, start_to_close, schedule_to_close)
        else:
            raw = await workflow.execute_activity(
                spec.name,
                arg,
                start_to_close_timeout=start_to_close,
                schedule_to_close_timeout=schedule_to_close,
                heartbeat_timeout=HEARTBEAT_TIMEOUT,
                retry_policy=retry,
                task_queue=task_queue,
            )
    except ActivityError as err:
        # Added while cases were running: those cancelled mid-activity replay as they ran.
        if isinstance(err.cause, CancelledError) and workflow.patched(CANCEL_PATCH):
            raise asyncio.CancelledError from err
        raise
    try:
        return spec.read(raw)
    except ValidationError as err:
        # A worker of another version, a broken adapter: the case is handed to a person.
        raise UnreadableAnswer(
            f"{spec.name} answered in a shape this worker cannot read "
            f"({err.error_count()} problem(s), first at "
            f"{'.'.join(str(p) for p in err.errors()[0]['loc']) or 'the top'})"
        ) from None


async def _local(
    name: str,
    arg: object,
    retry: RetryPolicy,
    start_to_close: timedelta,
    schedule_to_close: timedelta | None,
) -> object:
    """A local activity, failing as an activity does: a local activity's own failure reaches
    the workflow unwrapped, so it is wrapped here for the callers' `except ActivityError`."""
    try:
        return await workflow.execute_local_activity(
            name,
            arg,
            start_to_close_timeout=start_to_close,
            schedule_to_close_timeout=schedule_to_close,
            retry_policy=retry,
        )
    except ApplicationError as err:
        raise ActivityError(
            err.message,
            scheduled_event_id=0,
            started_event_id=0,
            identity="",
            activity_type=name,
            activity_id="",
            retry_state=None,
        ) from err


class UnreadableAnswer(Exception):
    """An activity's result does not fit its spec."""


class Case:
    def __init__(self, inp: CaseInput, status: CaseStatus) -> None:
        self.inp = inp
        self.status = status
        self.ticket = inp.ticket
        self.playbook = inp.playbook
        self.customer = inp.ticket.customer
        self.incident = inp.ticket.incident
        self.currency = inp.ticket.incident.paid.currency
        self.sla = SlaBook(self.playbook.sla, status.slas)
        self.done: list[str] = []  # what the written confirmation lists
        self.owner_contact: str | None = None

    @property
    def id(self) -> str:
        return self.status.case_id

    # ---- the case's own record
    def event(
        self, kind: str, detail: str, *, amount: Money | None = None, by: str | None = None
    ) -> None:
        self.status.events.append(
            Event(at=workflow.now(), kind=kind, detail=detail, amount=amount, by=by)
        )

    def action(self, kind: str, detail: str, *, amount: Money | None = None) -> None:
        """Something done for the customer: it goes into the written confirmation."""
        self.event(kind, detail, amount=amount)
        self.done.append(f"{detail}: {amount}" if amount else detail)

    def callback_input(
        self,
        *,
        at: datetime,
        reason: str,
        purpose: Literal["support_call", "question"] = "support_call",
    ) -> CallbackInput:
        """What a call-back child needs: the customer's phone, where to write, the playbook's
        call settings and the message retries."""
        customer = self.customer
        assert customer.phone is not None, "a call-back needs a phone number"
        channel = customer.preferred_channel
        return CallbackInput(
            case_id=self.id,
            customer_id=customer.id,
            first_name=customer.first_name,
            phone=customer.phone,
            written_channel=channel,
            written_to=customer.contact(channel) or "",
            at=at,
            reason=reason,
            purpose=purpose,
            ops_contact=self.inp.ops_contact,
            settings=self.playbook.callbacks,
            notify_retry=self.inp.retries.notify,
        )

    def stage(self, stage: Stage) -> None:
        if self.status.stage != stage:
            self.status.stage = stage
            self.event("stage", stage.value)
            workflow.upsert_search_attributes([STAGE_KEY.value_set(stage.value)])

    # ---- the ways out
    async def call(self, spec: ActivitySpec[Req, Res], arg: Req) -> Res:
        """A product-control call, retried with the playbook's product backoff."""
        return await execute(spec, arg, retry=retry_policy(self.inp.retries.product))

    async def send(
        self,
        step: str,
        channel: Channel,
        to: str,
        subject: str,
        body: str,
        *,
        first_contact: bool = False,
    ) -> MessageReceipt:
        """`first_contact`: the case's first word to the customer, sent on its own lane."""
        request = MessageRequest(
            step=step,
            channel=channel,
            to=to,
            subject=subject,
            body=body,
            customer_id=self.customer.id,
        )
        lane = contract.first_contact_queue(workflow.info().task_queue) if first_contact else None
        return await execute(
            calls.SEND_MESSAGE,
            request,
            retry=retry_policy(self.inp.retries.notify),
            task_queue=lane,
        )

    async def notify_ops(
        self, step: str, subject: str, body: str, *, to: str | None = None
    ) -> None:
        try:
            await self.send(step, "email", to or self.inp.ops_contact, subject, body)
        except ActivityError as err:
            # Nothing left to tell: the failure stays visible in history and status.
            self.event("ops_unreachable", failure_reason(err))

    async def escalate(self, reason: str, *, step: str | None = None) -> None:
        self.status.escalations.append(
            Escalation(at=workflow.now(), reason=reason, to=self.inp.ops_contact)
        )
        self.event("escalated", reason)
        # The reason stays out of the log (it can carry a provider's words about a person);
        # it is in the case's status, its history (encrypted) and the message to ops.
        workflow.logger.warning("case escalated (stage %s)", self.status.stage.value)
        n = len(self.status.escalations)
        await self.notify_ops(
            step or steps.escalation(n),
            f"Escalated: {self.id}",
            f"{reason}\n\nCase {self.id}, ticket {self.ticket.id}, stage "
            f"{self.status.stage.value}.",
        )

    async def release_unused(self) -> None:
        """Release every booking not in use, newest first."""
        for booking in reversed(self.status.bookings):
            if booking.status not in ("active", "failed"):
                continue
            try:
                await self.call(
                    calls.RELEASE_BOOKING,
                    ReleaseRequest(step=steps.release(booking.id), booking=booking.id),
                )
            except ActivityError as err:
                await self.escalate(
                    f"could not release booking {booking.id}: {failure_reason(err)}"
                )
                continue
            booking.status = "released"
            self.action("released", released_line(booking.id, booking.vehicle))
