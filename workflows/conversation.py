"""The conversation with the customer: telling them, asking them, and waiting for answers.

Every question waits with a timeout; while it is open the resolution clock is paused (waiting
for the customer does not count against us). A message that cannot be delivered escalates.
Silence is never an answer: see `Conversation.ask`.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from makegood.domain import contract, ids, steps, wording
    from makegood.domain.actions import CustomerAnswer
    from makegood.domain.case import CallbackState, Question
    from makegood.domain.playbook import Backoff, Callbacks
    from makegood.domain.ticket import Channel, Customer

from makegood.workflows.case import Case, failure_reason

PREFERRED_FALLBACK = "tell-all-falls-back-to-preferred"
SECOND_CHANNEL_PATCH = "second-channel-on-silence"
# Where a question goes when the preferred channel stays silent: the most direct first.
SECOND_CHANNELS: tuple[Channel, ...] = ("sms", "app", "email")


def second_channel(customer: Customer) -> Channel | None:
    """Another channel the customer has a contact on, or None when they have only one."""
    return next(
        (
            ch
            for ch in SECOND_CHANNELS
            if ch != customer.preferred_channel and customer.contact(ch) is not None
        ),
        None,
    )


def call_back_bound(settings: Callbacks, notify: Backoff) -> timedelta:
    """How long a call-back about a question may take at most: every call after the longest
    scheduling retries, waited out to its status timeout and redialled, and each of its texts
    (one per call and the hand-off) retried to the end."""
    scheduling = settings.schedule_backoff.maximum * settings.schedule_backoff.attempts
    per_call = scheduling + settings.status_timeout + settings.redial_after
    texts = (settings.calls + 1) * notify.maximum * notify.attempts
    return settings.calls * per_call + texts


class Conversation:
    def __init__(self, case: Case) -> None:
        self.case = case
        self.answers: dict[str, CustomerAnswer] = {}  # question id -> the answer taken

    def take(self, answer: CustomerAnswer) -> None:
        self.answers[answer.question_id] = answer

    async def tell(
        self, step: str, subject: str, body: str, channel: Channel | None = None
    ) -> bool:
        """One message on one channel (the preferred one by default); False if not sent."""
        case = self.case
        channel = channel or case.customer.preferred_channel
        to = case.customer.contact(channel)
        if to is None:
            case.event("skipped_message", f"no {channel} contact for {subject!r}")
            return False
        try:
            await case.send(
                steps.on_channel(step, channel),
                channel,
                to,
                subject,
                body,
                first_contact=case.status.first_contact_at is None,
            )
        except ActivityError as err:
            await case.escalate(f"could not reach the customer by {channel}: {failure_reason(err)}")
            return False
        if case.status.first_contact_at is None:
            case.status.first_contact_at = workflow.now()
            case.sla.stop("first_contact", workflow.now())
        case.event("message", f"{channel}: {subject}")
        return True

    async def tell_message(self, step: str, message: wording.Message) -> bool:
        return await self.tell(step, message.subject, message.body)

    async def tell_all(self, step: str, message: wording.Message) -> None:
        """The same message on every channel the playbook asks for when a remedy changes; if
        none of them reached the customer, on their preferred channel."""
        case = self.case
        preferred = case.customer.preferred_channel
        channels: list[Channel] = []
        for ch in case.playbook.notify_on_remedy:
            resolved = preferred if ch == "preferred" else ch
            if resolved not in channels:
                channels.append(resolved)
        reached = False
        for channel in channels:
            reached = (
                await self.tell(step, message.subject, message.body, channel=channel) or reached
            )
        # Added while cases were running: those told on no channel replay as they ran.
        if not reached and preferred not in channels and workflow.patched(PREFERRED_FALLBACK):
            await self.tell(step, message.subject, message.body, channel=preferred)

    async def ask(
        self,
        qid: str,
        prompt: str,
        choices: list[str],
        *,
        wait: timedelta | None = None,
        reminders: int = 0,
        window: bool = False,
        if_silent: str | None = None,
    ) -> CustomerAnswer | None:
        """Ask the customer on their channel; None when nobody answered.

        Silence is never an answer. A question unanswered on the preferred channel (and its
        reminders) is asked again on another channel, then per the playbook's `on_silence` by
        a call-back or not; if still nobody answers, ops is told which question went
        unanswered (`if_silent` says what the case does about it) and the question is listed
        as unconfirmed in the status and the outcome. A `window` (the claims window) is an
        invitation, not a question: it simply closes.
        """
        case = self.case
        wait = wait or case.playbook.timeouts.customer_reply
        body = wording.question_body(qid, prompt, choices)
        for attempt in range(reminders + 1):
            subject = wording.QUESTION_SUBJECT if attempt == 0 else wording.REMINDER_SUBJECT
            await self.tell(steps.ask(qid, attempt), subject, body)
            now = workflow.now()
            if case.status.question is None:  # open once it has been asked
                case.status.question = Question(
                    id=qid,
                    prompt=prompt,
                    choices=choices,
                    asked_at=now,
                    deadline=now + wait,
                    on_timeout="no answer",
                )
                self._resolution_clock(running=False)
            else:
                case.status.question.deadline = now + wait
            if await self._answered(qid, wait):
                break
        # Added while cases were running: those whose questions timed out before it replay
        # as they ran (silence was then the end of the question).
        if qid not in self.answers and not window and workflow.patched(SECOND_CHANNEL_PATCH):
            await self._after_silence(qid, prompt, body, wait, if_silent)
        case.status.question = None
        self._resolution_clock(running=True)
        return self.answers.get(qid)

    async def _answered(self, qid: str, wait: timedelta) -> bool:
        try:
            await workflow.wait_condition(lambda: qid in self.answers, timeout=wait)
        except TimeoutError:
            self.case.event("no_answer", f"{qid}: no answer within {wait}")
            return False
        return True

    def _open_until(self, wait: timedelta, on_timeout: str) -> None:
        """The open question's next deadline, and what happens then (for `status`)."""
        question = self.case.status.question
        if question is not None:
            question.deadline = workflow.now() + wait
            question.on_timeout = on_timeout

    async def _after_silence(
        self, qid: str, prompt: str, body: str, wait: timedelta, if_silent: str | None
    ) -> None:
        """A second channel, then a call-back or not; still silent: ops, and unconfirmed."""
        case = self.case
        asked = [case.customer.preferred_channel]
        second = second_channel(case.customer)
        if second is None:
            case.event("no_second_channel", f"{qid}: {asked[0]} is the only channel on file")
        else:
            self._open_until(wait, "a call-back or ops, and recorded as unconfirmed")
            case.event("second_channel", f"{qid}: no answer by {asked[0]}, asking by {second}")
            sent = await self.tell(
                steps.ask(qid), wording.SECOND_CHANNEL_SUBJECT, body, channel=second
            )
            if sent:
                asked.append(second)
                if await self._answered(qid, wait):
                    return
        how = f"asked by {' and '.join(asked)}"
        if case.playbook.on_silence == "callback":
            called = await self._call_back(qid, prompt, wait)
            if qid in self.answers:
                return
            how += f"; {called}"
        case.status.question = None  # from here on nobody's answer is waited for
        case.status.unconfirmed.append(f"{qid}: {prompt}")
        case.event("unconfirmed", f"{qid}: nobody answered ({how})")
        await case.escalate(
            f"no answer to {qid} ({prompt!r}), {how}: nothing is assumed"
            + (f"; {if_silent}" if if_silent else "")
            + "; a person must ask the customer"
        )

    async def _call_back(self, qid: str, prompt: str, wait: timedelta) -> str:
        """Call the customer to ask: the agent on the call records their answer as usual.

        The case's one call-back address (`<case id>:callback`, where the telephony provider
        reports) is used once: a case whose call-back already ran goes to ops instead. Returns
        how it went, for the escalation when nobody answered.
        """
        case, customer = self.case, self.case.customer
        if customer.phone is None:
            case.event("no_call_back", f"{qid}: no phone number on file")
            return "no phone number to call"
        if case.status.callback is not None:
            case.event("no_call_back", f"{qid}: this case's call-back has already been used")
            return "the case's call-back was already used"
        self._open_until(
            call_back_bound(case.playbook.callbacks, case.inp.retries.notify),
            "a call-back is under way; then ops, and recorded as unconfirmed",
        )
        case.status.callback = CallbackState()
        case.event("call_back", f"{qid}: calling the customer to ask")
        child = await workflow.start_child_workflow(
            contract.CALLBACK_WORKFLOW,
            case.callback_input(
                at=workflow.now(), reason=wording.question_call_reason(prompt), purpose="question"
            ),
            id=ids.callback_id(case.id),
            result_type=CallbackState,
        )
        try:
            # Bounded: the call-back ends by itself after the playbook's calls.
            await workflow.wait_condition(lambda: qid in self.answers or child.done())
        except asyncio.CancelledError:
            child.cancel()  # the case was cancelled: no more calls
            raise
        if not child.done():  # answered (on the call, or on any channel): no more calls
            child.cancel()
            with contextlib.suppress(ChildWorkflowError, asyncio.CancelledError):
                await child
            return "answered during the call-back"
        try:
            state = child.result()
        except ChildWorkflowError as err:
            return f"the call-back failed ({err.cause or err})"
        case.status.callback = state
        if state.state != "completed":
            return f"the call-back reached nobody after {len(state.attempts)} call(s)"
        # The call got through: the agent on it has a while to record the answer.
        self._open_until(wait, "ops, and recorded as unconfirmed")
        if await self._answered(qid, wait):
            return "answered after the call-back"
        return "the call-back got through but no answer was recorded"

    def _resolution_clock(self, *, running: bool) -> None:
        """Waiting for the customer does not count against the time to resolution."""
        sla = self.case.sla
        for clock in sla.clocks:
            if clock.name == "resolution" and clock.stopped_at is None:
                if running:
                    sla.resume(clock.label, workflow.now())
                else:
                    sla.pause(clock.label, workflow.now())
