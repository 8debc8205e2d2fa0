"""Support calls: a child workflow (`CallbackWorkflow`) calls back until someone answers, and
a person takes over when it cannot get through."""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import CancelledError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from makegood.domain import contract, ids, wording
    from makegood.domain.case import CallbackState, Stage

from makegood.workflows.remedies.base import Remedy

# Added while cases were running: a case cancelled during its call-back used to fail.
CANCEL_CALLBACK_PATCH = "cancel-ends-the-call-back"


class CallBack(Remedy):
    async def attempt(self) -> bool:
        case, inc, customer = self.case, self.case.incident, self.case.customer
        assert inc.call_at is not None and customer.phone is not None
        case.stage(Stage.REMEDY)
        case.status.callback = CallbackState()
        try:
            result = await self._call_back()
        except ChildWorkflowError as err:
            # The case was cancelled and took its call-back with it: wind down, not a failure.
            if isinstance(err.cause, CancelledError) and workflow.patched(CANCEL_CALLBACK_PATCH):
                raise asyncio.CancelledError from err
            raise
        case.status.callback = result
        self.result.attempts = len(result.attempts)
        if result.state == "completed":
            case.action("called", wording.called_line(len(result.attempts)))
            return True
        self.result.failed_attempts += 1
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
        await case.escalate(
            f"support call could not be completed, a person must call {customer.phone}: {history}"
        )
        case.action("handed_off", wording.handed_off_line(customer.phone))
        return False

    async def _call_back(self) -> CallbackState:
        case, inc, customer = self.case, self.case.incident, self.case.customer
        assert inc.call_at is not None and customer.phone is not None
        result: CallbackState = await workflow.execute_child_workflow(
            contract.CALLBACK_WORKFLOW,
            case.callback_input(at=inc.call_at, reason=f"{inc.item}: {inc.summary}"),
            id=ids.callback_id(case.id),
            result_type=CallbackState,
        )
        return result
