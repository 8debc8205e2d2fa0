"""Opening and driving cases against the fakes: the people's side of a case, and its clock."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from makegood.cases import case_status, open_case, send
from makegood.domain import calls, contract, ids
from makegood.domain.actions import (
    Actor,
    ApprovalDecision,
    CancelCase,
    CustomerAnswer,
    ExpenseClaim,
)
from makegood.domain.case import CallbackState, CallStatus, CaseInput, CaseOutcome, CaseStatus
from makegood.domain.money import Money
from makegood.domain.playbook import Playbook, PlaybookSet
from makegood.domain.ticket import IncidentKind, Ticket
from tests.fakes import Effect, Fakes
from tests.harness import AGENT, MANAGER, playbooks, ticket

OPS = "ops@makegood.example.com"
RESULT_TIMEOUT_S = 30


def _merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for name, value in changes.items():
        if isinstance(value, dict) and isinstance(merged.get(name), dict):
            merged[name] = _merge(merged[name], value)
        else:
            merged[name] = value
    return merged


def book(kind: str | None = None, **changes: Any) -> PlaybookSet:
    """The default playbooks with fast retries (they run in real time), one kind changed:
    `book("car_missing", remedy_attempts=2, timeouts={"approval": "PT1H"})`, validated."""
    base = playbooks(fast_retries=True)
    if kind is None:
        return base
    old = base.playbooks[IncidentKind(kind)]
    new = Playbook.model_validate(_merge(old.model_dump(), changes))
    return base.model_copy(update={"playbooks": {**base.playbooks, old.kind: new}})


def make_ticket(name: str, **changes: Any) -> Ticket:
    """An example ticket with a fresh id; `customer={...}` / `incident={...}` change fields."""
    t = ticket(name)
    if not changes:
        return t
    return Ticket.model_validate(_merge(t.model_dump(), changes))


@dataclass
class Case:
    """One case as its people drive it; what it did is in the fakes."""

    env: WorkflowEnvironment
    fakes: Fakes
    handle: WorkflowHandle[Any, CaseOutcome]
    own_clock: bool = False

    @property
    def id(self) -> str:
        return self.handle.id

    async def status(self) -> CaseStatus:
        return await case_status(self.env.client, self.id)

    async def until(
        self, predicate: Callable[[CaseStatus], bool], what: str, tries: int = 400
    ) -> CaseStatus:
        """Poll the status query (bounded, real time) until the case is where we wait for it."""
        status = await self.status()
        for _ in range(tries):
            if predicate(status):
                return status
            await asyncio.sleep(0.02)
            status = await self.status()
        raise AssertionError(
            f"{self.id}: never reached {what}; stage {status.stage}, "
            f"question {status.question}, approval {status.approval}"
        )

    async def eventually(self, check: Callable[[], bool], what: str, tries: int = 400) -> None:
        """Poll (bounded) for what the providers were asked: a case records some decisions
        in its status before the message that announces them is sent."""
        for _ in range(tries):
            if check():
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"{self.id}: never {what}")

    async def sent_to_ops(self, step: str) -> list[str | None]:
        await self.eventually(lambda: step in self.to_ops(), f"sent {step} to ops")
        return self.to_ops()

    async def question(self, qid: str) -> CaseStatus:
        return await self.until(
            lambda s: s.question is not None and s.question.id == qid, f"question {qid}"
        )

    async def approval(self, rid: str) -> CaseStatus:
        return await self.until(
            lambda s: s.approval is not None and s.approval.id == rid, f"approval {rid}"
        )

    async def answer(
        self,
        qid: str,
        answer: str,
        *,
        value: str | None = None,
        comment: str | None = None,
        by: Actor | None = None,
    ) -> None:
        """As the case's own customer unless `by` says who (an agent on their behalf...)."""
        status = await self.question(qid)
        by = by or Actor(id=status.customer_id, role="customer")
        await send(
            self.env.client,
            self.id,
            CustomerAnswer(question_id=qid, answer=answer, value=value, comment=comment, by=by),
        )

    async def approve(
        self,
        rid: str,
        approved: bool = True,
        by: Actor = MANAGER,
        note: str | None = None,
        amount: Money | None = None,
    ) -> None:
        """Decide `rid` as `by`; a decline carries a note (the case refuses one without)."""
        if not approved and note is None:
            note = "not justified by the case"
        await self.approval(rid)
        await send(
            self.env.client,
            self.id,
            ApprovalDecision(request_id=rid, approved=approved, note=note, amount=amount, by=by),
        )

    async def claim(self, claim_id: str, amount: str, description: str = "Taxi") -> None:
        customer = Actor(id=(await self.status()).customer_id, role="customer")
        await send(
            self.env.client,
            self.id,
            ExpenseClaim(
                claim_id=claim_id,
                description=description,
                amount=Money.of(amount, "USD"),
                by=customer,
            ),
        )

    async def cancel(self, reason: str = "customer withdrew the complaint") -> None:
        await send(self.env.client, self.id, CancelCase(reason=reason, by=AGENT))

    async def result(self) -> CaseOutcome:
        """The outcome; the server skips time while we wait for it (bounded in real time, so
        a case stuck on a wait without a timer fails the test instead of hanging it)."""
        async with asyncio.timeout(RESULT_TIMEOUT_S):
            return await self.handle.result()

    async def skip(self, duration: timedelta) -> None:
        """Move the server's clock on; only on a server of the test's own (the `solo` fixture)."""
        assert self.own_clock, "a test that moves the clock needs its own server: use `solo`"
        await self.env.sleep(duration)

    # ---- the call-back child, as the telephony provider and the test see it
    @property
    def callback(self) -> WorkflowHandle[Any, Any]:
        return self.env.client.get_workflow_handle(ids.callback_id(self.id))

    async def call_state(self) -> CallbackState:
        state: CallbackState = await self.callback.query(
            contract.CALLBACK_STATE_QUERY, result_type=CallbackState
        )
        return state

    async def booked_call(self, number: int = 1) -> str:
        """The id of the call-back's `number`th call, once it is booked and waited on."""
        for _ in range(400):
            try:
                state = await self.call_state()
            except Exception:  # the child has not started yet
                state = None
            if state and len(state.attempts) >= number and state.state == "waiting":
                call_id = state.attempts[number - 1].call_id
                assert call_id is not None
                return call_id
            await asyncio.sleep(0.02)
        raise AssertionError(f"call {number} was never booked")

    async def report_call(self, call_id: str, status: str, event_id: str) -> None:
        await self.callback.signal(
            contract.CALL_STATUS_SIGNAL,
            CallStatus.model_validate({"call_id": call_id, "status": status, "event_id": event_id}),
        )

    # ---- what the providers did for this case
    def effects(self, name: str) -> list[Effect]:
        return self.fakes.done(name, workflow_id=self.id)

    def steps(self, name: str) -> list[str | None]:
        return [e.step for e in self.effects(name)]

    def to_customer(self) -> list[str | None]:
        """Steps of the messages the customer got, in order."""
        return [e.step for e in self.effects(calls.SEND_MESSAGE.name) if e.request.to != OPS]

    def to_ops(self) -> list[str | None]:
        return [e.step for e in self.effects(calls.SEND_MESSAGE.name) if e.request.to == OPS]

    def paid(self) -> list[tuple[str | None, str]]:
        return [(e.step, str(e.request.amount)) for e in self.effects(calls.MAKE_PAYMENT.name)]


@dataclass
class Runner:
    """Opens this test's cases on the module's server, on this test's task queue."""

    env: WorkflowEnvironment
    fakes: Fakes
    own_clock: bool = False
    task_queue: str = field(default_factory=lambda: f"fast-{uuid.uuid4().hex[:8]}")
    cases: list[Case] = field(default_factory=list)

    async def open(self, t: Ticket | str, playbook_set: PlaybookSet | None = None) -> Case:
        if isinstance(t, str):
            t = make_ticket(t)
        # The server's clock has moved on with earlier tests' skipping: the case opens "now"
        # on that clock, or its SLA clocks would start in the past.
        now = await self.env.get_current_time()
        t = t.model_copy(update={"reported_at": now})
        opened = await open_case(
            self.env.client, t, playbook_set or book(), task_queue=self.task_queue, ops_contact=OPS
        )
        case = Case(self.env, self.fakes, opened.handle, self.own_clock)
        self.cases.append(case)
        return case

    async def start(self, inp: CaseInput) -> Case:
        """Start a case straight through Temporal, past the edge's checks: what a case does
        with an input the API would have refused (the workflow must not trust its caller)."""
        handle: WorkflowHandle[Any, CaseOutcome] = await self.env.client.start_workflow(
            contract.RECOVERY_WORKFLOW,
            inp,
            id=inp.ticket.case_id,
            task_queue=self.task_queue,
            result_type=CaseOutcome,
        )
        case = Case(self.env, self.fakes, handle, self.own_clock)
        self.cases.append(case)
        return case

    def case_input(self, t: Ticket, playbook_set: PlaybookSet | None = None) -> CaseInput:
        playbook_set = playbook_set or book()
        return CaseInput(
            ticket=t,
            playbook=playbook_set.for_kind(t.incident.kind),
            playbook_version=playbook_set.version,
            retries=playbook_set.retries,
            ops_contact=OPS,
        )

    async def close(self) -> None:
        """End what this test left running (a call-back child goes with its case).

        Held calls are let go, and each case is left to settle (no activity, no workflow task
        in flight) before it is terminated: the time-skipping server keeps time locked for
        an activity running when its workflow is terminated, and every later skip on the
        module's server would hang.
        """
        self.fakes.release_all()
        for case in self.cases:
            with contextlib.suppress(RPCError):
                for _ in range(250):
                    raw = (await case.handle.describe()).raw_description
                    if not raw.pending_activities and not raw.HasField("pending_workflow_task"):
                        break
                    await asyncio.sleep(0.02)
                await case.handle.terminate("test over")
