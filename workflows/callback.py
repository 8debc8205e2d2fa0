"""CallbackWorkflow: a booked support call that calls back by itself until someone answers.

Runs as a child of the case (id `<case id>:callback`), so the telephony provider's status
callbacks have one address. Each call is scheduled through the telephony provider; while
the scheduling system fails, the workflow retries with backoff, one recorded attempt at a
time; a dropped call, no answer or a status callback that never comes makes it text the
customer and call again; after the playbook's number of calls a person takes over.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from makegood.domain import calls, contract, steps, wording
    from makegood.domain.case import CallAttempt, CallbackInput, CallbackState, CallStatus
    from makegood.domain.provider import CallOutcome, CallRequest, MessageRequest, ScheduledCall
    from makegood.domain.ticket import Channel

from makegood.workflows.case import execute, retry_policy

ONCE = RetryPolicy(maximum_attempts=1)


def _reason(err: ActivityError) -> tuple[str, bool]:
    cause = err.cause
    if isinstance(cause, ApplicationError):
        return cause.message, not cause.non_retryable
    return str(cause or err), True


@workflow.defn(name=contract.CALLBACK_WORKFLOW)
class CallbackWorkflow:
    @workflow.init
    def __init__(self, inp: CallbackInput) -> None:
        self.inp = inp
        self.state = CallbackState()
        self._statuses: dict[str, CallStatus] = {}
        self._ended: set[str] = set()
        self._deliveries: set[str] = set()

    @workflow.run
    async def run(self, inp: CallbackInput) -> CallbackState:
        settings = inp.settings
        due = inp.at
        for number in range(1, settings.calls + 1):
            attempt = CallAttempt(number=number, due=due)
            self.state.attempts.append(attempt)
            call = await self._schedule(attempt)
            if call is None:
                attempt.outcome = "not_scheduled"
                break
            attempt.call_id = call.call_id
            if number == 1:
                await self._write(
                    steps.CALL_BOOKED,
                    wording.QUESTION_CALL_BOOKED_SUBJECT
                    if self.about_a_question
                    else wording.CALL_BOOKED_SUBJECT,
                    wording.call_booked(inp.phone, due, inp.reason),
                )
            self.state.state = "waiting"
            attempt.outcome = await self._await_status(call.call_id, due)
            attempt.ended_at = workflow.now()
            self._ended.add(call.call_id)
            if attempt.outcome == "completed":
                self.state.state = "completed"
                return self.state
            if number == settings.calls:
                break
            due = workflow.now() + settings.redial_after
            await self._text(steps.redial(number), wording.calling_again(attempt.outcome, due))
        await self._hand_off()
        return self.state

    async def _schedule(self, attempt: CallAttempt) -> ScheduledCall | None:
        """Book one call; retry a failing scheduling system with backoff, each try recorded."""
        backoff = self.inp.settings.schedule_backoff
        delay = backoff.initial
        self.state.state = "scheduling"
        for tried in range(1, backoff.attempts + 1):
            try:
                return await execute(
                    calls.SCHEDULE_CALL,
                    CallRequest(
                        step=steps.call(attempt.number),
                        to=self.inp.phone,
                        at=attempt.due,
                        reason=self.inp.reason,
                        customer_id=self.inp.customer_id,
                    ),
                    retry=ONCE,
                )
            except ActivityError as err:
                reason, retryable = _reason(err)
                attempt.schedule_failures.append(reason)
                workflow.logger.warning(
                    "scheduling call %s failed (try %s): %s", attempt.number, tried, reason
                )
                if not retryable or tried == backoff.attempts:
                    return None
                if tried == 1:
                    await self._text(
                        steps.scheduling_trouble(attempt.number), wording.SCHEDULING_TROUBLE
                    )
                await workflow.sleep(delay)
                delay = min(delay * 2, backoff.maximum)
        return None

    async def _await_status(
        self, call_id: str, due: datetime
    ) -> CallOutcome | Literal["no_callback"]:
        wait = max(due - workflow.now(), timedelta(0)) + self.inp.settings.status_timeout
        try:
            await workflow.wait_condition(lambda: call_id in self._statuses, timeout=wait)
        except TimeoutError:
            return "no_callback"
        return self._statuses[call_id].status

    async def _hand_off(self) -> None:
        self.state.state = "handed_off"
        if self.about_a_question:  # the case decides what follows; no personal call promised
            await self._text(steps.HANDED_OFF, wording.question_call_given_up())
            return
        by = workflow.now() + self.inp.settings.hand_off_within
        await self._text(steps.HANDED_OFF, wording.call_handed_off(by))

    @property
    def about_a_question(self) -> bool:
        return self.inp.purpose == "question"

    # ---- telephony provider callbacks: at least once, in any order
    @workflow.signal(name=contract.CALL_STATUS_SIGNAL)
    def call_status(self, status: CallStatus) -> None:
        if status.event_id in self._deliveries:
            return  # the same delivery again
        self._deliveries.add(status.event_id)
        if status.call_id in self._statuses or status.call_id in self._ended:
            self.state.ignored_callbacks.append(
                f"{status.event_id}: {status.status} for {status.call_id} arrived after that "
                "call was settled"
            )
            return
        self._statuses[status.call_id] = status

    @workflow.query(name=contract.CALLBACK_STATE_QUERY)
    def callback_state(self) -> CallbackState:
        return self.state

    # ---- messages
    async def _text(self, step: str, body: str) -> None:
        subject = wording.QUESTION_CALL_SUBJECT if self.about_a_question else wording.CALL_SUBJECT
        await self._message(step, "sms", self.inp.phone, subject, body)

    async def _write(self, step: str, subject: str, body: str) -> None:
        await self._message(step, self.inp.written_channel, self.inp.written_to, subject, body)

    async def _message(self, step: str, channel: Channel, to: str, subject: str, body: str) -> None:
        try:
            await execute(
                calls.SEND_MESSAGE,
                MessageRequest(
                    step=steps.on_channel(step, channel),
                    channel=channel,
                    to=to,
                    subject=subject,
                    body=wording.greeting(self.inp.first_name, body),
                    customer_id=self.inp.customer_id,
                ),
                retry=retry_policy(self.inp.notify_retry),
            )
        except ActivityError as err:
            # The case escalates a hand-off anyway; a lost text must not stop the calls.
            workflow.logger.warning("message %s failed: %s", step, _reason(err)[0])
