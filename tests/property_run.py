"""Carrying out a generated plan (`tests.property_plans`) against the real RecoveryWorkflow on a
time-skipping server of its own, with the in-memory providers (`tests.fakes`), and checking the
invariants (`tests.property_checks`) at every quiet point: after the case opens and after each
action, once nothing is in flight (no workflow task, no activity).

One server per run: its clock belongs to this case alone (`Sleep` moves it, and awaiting a
result would make it jump), it starts in about a tenth of a second, and a run that fails leaves
nothing behind for the next one. Actions wait for the case to be quiet first, so a run is the
same every time it is replayed and shrinks cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from hypothesis import currently_in_test_context, event, target
from pydantic import ValidationError
from temporalio.client import WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from makegood.cases import Invalid, Refused, case_status, open_case, report_call, send
from makegood.domain import calls, contract, ids, roles
from makegood.domain.actions import (
    AgentNote,
    ApprovalDecision,
    AssignCase,
    CancelCase,
    CustomerAnswer,
    EscalateCase,
    ExpenseClaim,
)
from makegood.domain.case import CallStatus, CaseStatus, PaymentEvent
from makegood.domain.money import Money
from tests.fakes import Fakes
from tests.fast.driver import OPS, book
from tests.harness import time_skipping_env
from tests.property_checks import check_invariants, waiting_on
from tests.property_plans import (
    CALL_OUTCOMES,
    CUSTOMER,
    SKUS,
    Action,
    Answer,
    Assign,
    CallNews,
    Cancel,
    Claim,
    Decide,
    Escalate,
    Note,
    PaymentNews,
    Plan,
    Proceed,
    Sleep,
)
from tests.property_quiet import settle
from tests.property_world import script, world

PLAYBOOKS = book()  # the default playbooks, with provider retries in milliseconds
ACTION_TIMEOUT_S = 20.0  # an update that never returns is a wedged case, not a slow one
CLOCK_JUMPS = 40  # the longest case (re-bookings, approvals escalating, reminders) needs ~20


class RefusedAtIntake(Exception):
    """The ticket was refused before any case started, with the reason: a fine outcome for an
    input the domain does not accept (validation at the edge), never a stuck case."""


@dataclass
class Run:
    """One plan's case on its own server: its people and providers, and what they did."""

    env: WorkflowEnvironment
    fakes: Fakes
    plan: Plan
    case_id: str
    log: list[str] = field(default_factory=list)

    @property
    def handle(self) -> WorkflowHandle[Any, Any]:
        return self.env.client.get_workflow_handle(self.case_id)

    async def status(self) -> CaseStatus:
        """The status query: it must answer, after anything, in any state of the case."""
        async with asyncio.timeout(ACTION_TIMEOUT_S):
            return await case_status(self.env.client, self.case_id)

    async def settle(self) -> None:
        await settle(self.env.client, self.case_id)

    # ---- actions
    async def perform(self, action: Action) -> str:
        async with asyncio.timeout(ACTION_TIMEOUT_S):
            if isinstance(action, Sleep):
                await self.env.sleep(action.duration)
                return f"slept {action.duration}"
            if isinstance(action, PaymentNews):
                return await self._payment_news(action)
            if isinstance(action, CallNews):
                return await self._call_news(action)
            if isinstance(action, Proceed):
                nudge = await self._next_step(action)
                if not isinstance(nudge, (Answer, Decide)):
                    return await self.perform(nudge)
                action = nudge
            update, must_refuse = await self._update(action)
            try:
                accepted = await send(self.env.client, self.case_id, update)
            except Refused as err:
                assert str(err).strip(), f"{update!r} refused without a reason"
                return f"refused {type(update).__name__}: {err}"
            assert not must_refuse, f"{update!r} was accepted: {must_refuse}"
            return f"accepted {type(update).__name__}: {accepted.detail}"

    async def _next_step(self, step: Proceed) -> Action:
        """What `Proceed` means right now, as one of the other actions."""
        status = await self.status()
        if status.question is not None:
            value = SKUS[step.choice // 2 % len(SKUS)]
            return Answer("open", step.choice, CUSTOMER, value)
        if status.approval is not None:
            return Decide("pending", step.approved, step.by)
        call = status.callback
        if call is not None and call.state == "waiting":
            outcome = CALL_OUTCOMES[step.choice % len(CALL_OUTCOMES)]
            return CallNews(-1, outcome, step.choice)  # the last call scheduled
        if status.follow_up_at is not None:
            now = await self.env.get_current_time()
            return Sleep(max(status.follow_up_at - now, timedelta(0)) + timedelta(seconds=1))
        return Sleep(timedelta(minutes=1))

    async def _update(self, action: Action) -> tuple[contract.Action, str | None]:
        """The update an action makes, and why the case must refuse it (None: it may take it)."""
        status = await self.status()
        q, pending = status.question, status.approval
        must: str | None = None
        update: contract.Action
        if isinstance(action, Answer):
            qid, answer = (q.id, q.choices[action.choice % len(q.choices)]) if q else ("none", "x")
            if q is None:
                must = "no question is open"
            elif action.to == "wrong_question":
                qid, must = f"{qid}-other", "it answers a question that is not open"
            elif action.to == "bad_choice":
                answer, must = "maybe", "it is not one of the choices"
            update = CustomerAnswer(
                question_id=qid, answer=answer, value=action.value, by=action.by
            )
        elif isinstance(action, Claim):
            update = ExpenseClaim(
                claim_id=action.claim_id,
                description="Taxi",
                amount=Money.of(action.amount, action.currency),
                by=action.by,
            )
        elif isinstance(action, Decide):
            rid = pending.id if pending is not None else "compensation"
            if pending is None:
                must = "nothing is waiting for approval"
            elif action.to == "wrong_request":
                rid, must = f"{rid}-other", "it decides a request that is not pending"
            elif pending.amount is not None and (
                self.plan.opened_by == action.by
                or status.owner == str(action.by)
                or any(c.by == action.by for c in status.claims)
            ):
                must = "a manager who opened, owns or claimed in the case may not decide its money"
            # A person declining writes why (the case refuses a decline without a note).
            note = None if action.approved else "not justified by the case"
            update = ApprovalDecision(
                request_id=rid, approved=action.approved, note=note, by=action.by
            )
        elif isinstance(action, Note):
            update = AgentNote(text="Spoke to the customer.", by=action.by)
        elif isinstance(action, Assign):
            update = AssignCase(to=action.to, contact=f"{action.to.id}@example.com", by=action.by)
        elif isinstance(action, Escalate):
            update = EscalateCase(reason="the customer asked for a supervisor", by=action.by)
        else:
            assert isinstance(action, Cancel)
            update = CancelCase(reason="the customer withdrew the complaint", by=action.by)
        refusal = roles.refusal_for(update)
        return update, refusal or must

    async def _payment_news(self, news: PaymentNews) -> str:
        paid = self.fakes.done(calls.MAKE_PAYMENT, workflow_id=self.case_id)
        if news.payment is None or not paid:
            key, payment_id, which = f"{self.case_id}:never-paid", None, "unknown"
        else:
            effect = paid[news.payment % len(paid)]
            key, payment_id = effect.key or "", effect.result.payment_id
            which = effect.step or "unknown"
        event = PaymentEvent(
            event_id=f"evt-{which}-{news.type}-{news.delivery}",
            type=news.type,
            idempotency_key=key,
            payment_id=payment_id,
            reason="the card issuer reversed it" if news.type == "failed" else None,
        )
        try:
            await self.handle.signal(contract.PAYMENT_EVENT_SIGNAL, event)
        except RPCError as err:  # a closed case takes no signals: the webhook answers so too
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            return f"payment event {event.event_id}: case closed"
        return f"payment event {event.event_id} for {which}"

    async def _call_news(self, news: CallNews) -> str:
        scheduled = self.fakes.done(calls.SCHEDULE_CALL, workflow_id=self.case_id)
        if news.call is None or not scheduled:
            call_id = "call-nobody-scheduled"
        else:
            call_id = scheduled[news.call % len(scheduled)].result.call_id
        report = CallStatus(
            call_id=call_id, status=news.status, event_id=f"tel-{call_id}-{news.delivery}"
        )
        try:
            delivered = await report_call(self.env.client, self.case_id, report)
        except Refused as err:
            return f"call status {report.event_id}: refused: {err}"
        return f"call status {report.event_id}: {'delivered' if delivered else 'too late'}"

    # ---- the end
    async def close(self) -> None:
        """Terminate what is still running (quiet by now), call-back first."""
        for wid in (ids.callback_id(self.case_id), self.case_id):
            with contextlib.suppress(RPCError):
                await self.env.client.get_workflow_handle(wid).terminate("property run over")


@asynccontextmanager
async def started(plan: Plan) -> AsyncIterator[Run]:
    """A time-skipping server, a worker with the fakes, and the plan's case opened on it."""
    fakes = Fakes(world(plan.world, plan.ticket))
    for fault in plan.world.faults:
        script(fakes, fault)
    async with await time_skipping_env() as env:
        task_queue = "properties"
        async with fakes.worker(env.client, task_queue):
            try:
                ticket = plan.ticket.ticket(await env.get_current_time())
                opened = await open_case(
                    env.client,
                    ticket,
                    PLAYBOOKS,
                    task_queue=task_queue,
                    ops_contact=OPS,
                    opened_by=plan.opened_by,
                )
            except (ValidationError, Invalid) as err:
                raise RefusedAtIntake(str(err)) from err
            run = Run(env, fakes, plan, opened.case_id)
            try:
                yield run
            finally:
                fakes.release_all()
                with contextlib.suppress(Exception):
                    await run.settle()
                await run.close()


async def carry_out(plan: Plan) -> CaseStatus | None:
    """Open the case, do every action, and check the invariants at every quiet point.
    Returns the last status (None: the ticket was refused at intake, with a reason);
    hypothesis' statistics (`--hypothesis-show-statistics`) count where the runs ended, so a
    change that stops plans from reaching approvals, payments or the end shows there."""
    try:
        return await _carry_out(plan)
    except RefusedAtIntake as err:
        assert str(err).strip(), "a ticket refused at intake without a reason"
        if currently_in_test_context():
            event("refused at intake")
        return None


async def _carry_out(plan: Plan) -> CaseStatus:
    async with started(plan) as run:
        await checked(run, "opened")
        for action in plan.actions:
            try:
                outcome = await run.perform(action)
            except AssertionError as err:
                raise AssertionError(f"{action!r}: {err}\nso far:\n" + "\n".join(run.log)) from err
            await checked(run, outcome)
        status = await run.status()
        if currently_in_test_context():  # a hypothesis run, not one example by hand
            for label in reached(status):
                event(label)
            target(depth(status), label="how far the case went")
        status = await run_out_the_clock(run)
        if currently_in_test_context():
            event(f"left alone, closed {status.resolution}")
        return status


async def run_out_the_clock(run: Run) -> CaseStatus:
    """Nobody acts any more: the clock jumps to each deadline the case names, in turn, and
    the case must close. So every named wait has a timer behind it that moves the case on
    (a deadline that passes without effect fails the check after the jump). The one wait
    that never closes by itself is an approval past its whole chain: a timeout never declines
    it (unless the playbook says so), so it must go on reminding its role instead."""
    for _ in range(CLOCK_JUMPS):
        status = await run.status()
        if status.resolution is not None:
            return status
        now = await run.env.get_current_time()
        pending = status.approval
        if pending is not None and pending.decide_by is not None and now > pending.decide_by:
            await run.env.sleep(max(pending.deadline - now, timedelta(0)) + timedelta(seconds=1))
            await checked(run, "left alone past the approval chain")
            later = await run.status()
            assert later.approval is not None and later.approval.reminded > pending.reminded, (
                f"{pending.id} past its chain was not reminded again"
            )
            return later
        due = min(deadline for _, deadline in waiting_on(status, now, PLAYBOOKS))
        await run.env.sleep(max(due - now, timedelta(0)) + timedelta(seconds=1))
        await checked(run, f"left alone until {due:%Y-%m-%d %H:%M:%S}")
    raise AssertionError(f"left alone, the case was still open after {CLOCK_JUMPS} deadlines")


def reached(status: CaseStatus) -> list[str]:
    if status.resolution is not None:
        labels = [f"closed {status.resolution}"]
    else:
        waits: list[tuple[str, object]] = [("question", status.question)]
        waits += [("approval", status.approval)]
        call = status.callback
        waits += [("follow-up", status.follow_up_at)]
        waits += [("call-back", call and call.state in ("scheduling", "waiting"))]
        labels = [f"waiting in {status.stage.value}: " + ", ".join(w for w, v in waits if v)]
    if any(d.amount is not None for d in status.decisions):
        labels.append("money approved or declined by a manager")
    if any(i.state == "paid" and i.amount for i in status.compensation):
        labels.append("money paid")
    if status.reopened:
        labels.append("re-opened")
    return labels


def depth(status: CaseStatus) -> float:
    """How far a run took its case, for hypothesis' targeted search (`target`): money paid
    and decided, re-opened, people and providers heard."""
    paid = sum(i.state == "paid" for i in status.compensation)
    return float(paid + 2 * len(status.decisions) + 3 * status.reopened + len(status.events) / 20)


async def checked(run: Run, what: str) -> None:
    run.log.append(what)
    try:
        await run.settle()
        status = await run.status()
        await check_invariants(run.env, run.handle, status, run.fakes, run.plan, PLAYBOOKS)
    except AssertionError as err:
        raise AssertionError(f"after {what}: {err}\nso far:\n" + "\n".join(run.log)) from err
