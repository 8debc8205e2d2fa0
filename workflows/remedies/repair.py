"""Devices: repair, or replace with an equal or better model once the fault keeps coming back."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from makegood.domain import calls, steps, wording
    from makegood.domain.case import Stage
    from makegood.domain.provider import RepairRequest, ReplaceRequest

from makegood.workflows.case import failure_reason
from makegood.workflows.remedies.base import OWNERSHIP_PATCH, Remedy


class RepairOrReplace(Remedy):
    async def attempt(self) -> bool:
        case, inc = self.case, self.case.incident
        assert inc.item is not None
        if inc.asset:
            verified = await self.owned("asset", inc.asset)
        else:
            verified = await self.owned("order", inc.reference)
        if not verified:
            return False
        case.stage(Stage.DIAGNOSE)
        # Only the customer's own earlier reports count towards a replacement (someone
        # else's reports about a serial number must not earn a free device).
        own_only = workflow.patched(OWNERSHIP_PATCH)
        earlier = [
            c
            for c in case.status.related
            if c.same_asset
            and c.kind == inc.kind.value
            and c.fault == inc.fault
            and (c.same_customer or not own_only)
        ]
        report = len(earlier) + 1
        replace = report >= case.playbook.replace_on_report
        if inc.asset:
            case.event(
                "diagnosis",
                f"report {report} of {inc.fault or 'this fault'} on "
                f"{inc.asset}: " + ("replace" if replace else "repair"),
            )
        case.stage(Stage.REMEDY)
        self.result.attempts = 1
        try:
            if replace:
                await self._replace()
            else:
                await self._repair()
        except ActivityError as err:
            self.result.failed_attempts += 1
            await case.escalate(
                f"{'replacement' if replace else 'repair'} failed: {failure_reason(err)}"
            )
            return False
        return True

    async def _replace(self) -> None:
        case, inc = self.case, self.case.incident
        assert inc.item is not None
        done = await case.call(
            calls.REPLACE_ITEM,
            ReplaceRequest(
                step=steps.REPLACE,
                asset=inc.asset,
                item=inc.item,
                customer_id=case.customer.id,
                order=inc.reference,
            ),
        )
        better = wording.better_model_note(done.same_model, inc.item)
        case.action("replaced", wording.replaced_line(done.sku, better, inc.item, inc.asset))
        await self.talk.tell_message(
            steps.REMEDY, wording.replacement(case.customer.first_name, done.sku, better)
        )

    async def _repair(self) -> None:
        case, inc = self.case, self.case.incident
        assert inc.item is not None and inc.asset is not None and inc.fault is not None
        await case.call(
            calls.BOOK_REPAIR,
            RepairRequest(
                step=steps.REPAIR,
                asset=inc.asset,
                item=inc.item,
                fault=inc.fault,
                customer_id=case.customer.id,
            ),
        )
        case.action("repair", wording.repair_line(inc.item, inc.asset, inc.fault))
        await self.talk.tell_message(
            steps.REMEDY, wording.repair(case.customer.first_name, inc.item)
        )
