"""The conversation with the customer: telling them, asking them, and waiting for answers.

Every question waits with a timeout; while it is open the resolution clock is paused (waiting
for the customer does not count against us). A message that cannot be delivered escalates.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from makegood.domain import steps, wording
    from makegood.domain.actions import CustomerAnswer
    from makegood.domain.case import Question
    from makegood.domain.ticket import Channel

from makegood.workflows.case import Case, failure_reason

PREFERRED_FALLBACK = "tell-all-falls-back-to-preferred"


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
            await case.send(steps.on_channel(step, channel), channel, to, subject, body)
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
    ) -> CustomerAnswer | None:
        """Ask the customer on their channel; None when every wait ran out."""
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
            try:
                await workflow.wait_condition(lambda: qid in self.answers, timeout=wait)
                break
            except TimeoutError:
                case.event("no_answer", f"{qid}: no answer within {wait}")
        case.status.question = None
        self._resolution_clock(running=True)
        return self.answers.get(qid)

    def _resolution_clock(self, *, running: bool) -> None:
        """Waiting for the customer does not count against the time to resolution."""
        sla = self.case.sla
        for clock in sla.clocks:
            if clock.name == "resolution" and clock.stopped_at is None:
                if running:
                    sla.resume(clock.label, workflow.now())
                else:
                    sla.pause(clock.label, workflow.now())
