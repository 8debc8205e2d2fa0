"""Earlier cases of the same customer or about the same asset, from Temporal visibility."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog
from temporalio import activity
from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus
from temporalio.common import SearchAttributeKey
from temporalio.service import RPCError, RPCStatusCode

from makegood.adapters.base import TransientProviderError
from makegood.domain import calls, contract
from makegood.domain.case import CaseOutcome, RelatedCase, RelatedCases
from makegood.domain.provider import RelatedQuery

log = structlog.get_logger("makegood.activities")
CUSTOMER_KEY = SearchAttributeKey.for_keyword(contract.SA_CUSTOMER)
LIMIT = 10  # the most recent: enough to spare the customer re-explaining, cheap to read


def related_query(q: RelatedQuery) -> str:
    customer = contract.pseudonym("customer", q.customer_id)
    asset = contract.pseudonym("asset", q.asset or q.reference)
    return (
        f'WorkflowType = "{contract.RECOVERY_WORKFLOW}" AND '
        f'({contract.SA_CUSTOMER} = "{customer}" OR {contract.SA_ASSET} = "{asset}")'
    )


class HistoryActivities:
    def __init__(self, client: Client) -> None:
        self.client = client

    @activity.defn(name=calls.FIND_RELATED_CASES.name)
    async def find_related_cases(self, q: RelatedQuery) -> RelatedCases:
        bound = log.bind(case_id=q.case_id, activity=calls.FIND_RELATED_CASES.name)
        try:
            found = [wf async for wf in self.client.list_workflows(related_query(q), limit=LIMIT)]
        except RPCError as err:
            if err.status == RPCStatusCode.UNIMPLEMENTED:
                # e.g. the time-skipping test server: no visibility queries at all.
                return RelatedCases(
                    available=False, note="this Temporal server cannot search cases"
                )
            raise TransientProviderError(f"visibility query failed: {err.message}") from err
        cases = [await self._describe(wf, q) for wf in found if wf.id != q.case_id]
        cases.sort(key=lambda c: c.opened_at)
        bound.info("related_cases", found=len(cases))
        return RelatedCases(cases=cases)

    async def _describe(self, wf: WorkflowExecution, q: RelatedQuery) -> RelatedCase:
        memo: Mapping[str, Any] = await wf.memo()
        state = (
            wf.status.name.lower() if isinstance(wf.status, WorkflowExecutionStatus) else "unknown"
        )
        resolution = memo.get("resolution")
        if resolution is None and wf.status == WorkflowExecutionStatus.COMPLETED:
            # A case closed before resolutions were kept in the memo: read its result.
            handle = self.client.get_workflow_handle(
                wf.id, run_id=wf.run_id, result_type=CaseOutcome
            )
            resolution = (await handle.result()).resolution
        asset = memo.get("asset")
        customer = wf.typed_search_attributes.get(CUSTOMER_KEY)
        return RelatedCase(
            case_id=wf.id,
            kind=memo.get("kind", "unknown"),
            reference=memo.get("reference", ""),
            asset=asset,
            fault=memo.get("fault"),
            summary=memo.get("summary", ""),
            opened_at=wf.start_time,
            state=state,
            same_asset=q.asset is not None and asset == q.asset,
            same_customer=customer == contract.pseudonym("customer", q.customer_id),
            resolution=resolution,
        )
