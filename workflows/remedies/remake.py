"""Coffee shop: remake the order at once, at no cost."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from makegood.domain import calls, steps, wording
    from makegood.domain.case import Stage
    from makegood.domain.provider import RemakeRequest

from makegood.workflows.case import failure_reason
from makegood.workflows.remedies.base import Remedy


class Remake(Remedy):
    async def attempt(self) -> bool:
        case, inc = self.case, self.case.incident
        if not await self.owned("order", inc.reference):
            return False
        case.stage(Stage.REMEDY)
        self.result.attempts = 1
        try:
            await case.call(
                calls.REMAKE_ORDER,
                RemakeRequest(step=steps.REMAKE, order=inc.reference, item=inc.item or "order"),
            )
        except ActivityError as err:
            await case.escalate(f"remake failed: {failure_reason(err)}")
            self.result.failed_attempts += 1
            return False
        case.action("remade", wording.remade_line(inc.item, inc.reference))
        return True
