"""Earlier cases of the same customer or about the same asset, from Temporal visibility.

Visibility matches cases by keyed pseudonyms (`makegood.domain.pseudonyms`); cases opened
before the key existed carry the older unkeyed form, so both are searched. What an earlier case
was about (reference, serial, fault, summary) is personal or free text, so it is not in the
memo: it is read from the earlier case's first history event, its input, which the client's
codec decrypts. Cases whose memo still holds those fields (opened before) are described from
the memo, as they always were.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import structlog
from temporalio import activity
from temporalio.api.common.v1 import WorkflowExecution as Execution
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryRequest
from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus
from temporalio.common import SearchAttributeKey
from temporalio.service import RPCError, RPCStatusCode

from makegood import visibility
from makegood.adapters.base import TransientProviderError
from makegood.domain import calls, contract
from makegood.domain.case import CaseOutcome, RelatedCase, RelatedCases
from makegood.domain.provider import RelatedQuery
from makegood.domain.pseudonyms import Pseudonyms

log = structlog.get_logger("makegood.activities")
CUSTOMER_KEY = SearchAttributeKey.for_keyword(contract.SA_CUSTOMER)
LIMIT = 10  # the most recent: enough to spare the customer re-explaining, cheap to read


def related_query(q: RelatedQuery, pseudonyms: Pseudonyms) -> str:
    """Cases of this customer or asset, under the keyed and the legacy pseudonyms."""
    customer = visibility.one_of(contract.SA_CUSTOMER, pseudonyms.forms("customer", q.customer_id))
    asset = visibility.one_of(contract.SA_ASSET, pseudonyms.forms("asset", q.asset or q.reference))
    cases = visibility.equals("WorkflowType", contract.RECOVERY_WORKFLOW)
    return f"{cases} AND ({customer} OR {asset})"


class HistoryActivities:
    def __init__(self, client: Client, pseudonyms: Pseudonyms | None = None) -> None:
        self.client = client
        self.pseudonyms = pseudonyms

    @activity.defn(name=calls.FIND_RELATED_CASES.name)
    async def find_related_cases(self, q: RelatedQuery) -> RelatedCases:
        bound = log.bind(case_id=q.case_id, activity=calls.FIND_RELATED_CASES.name)
        if self.pseudonyms is None:
            return RelatedCases(available=False, note="no pseudonym key: cases cannot be matched")
        try:
            query = related_query(q, self.pseudonyms)
            found = [wf async for wf in self.client.list_workflows(query, limit=LIMIT)]
            cases = list(
                await asyncio.gather(
                    *(self._describe(wf, q, self.pseudonyms) for wf in found if wf.id != q.case_id)
                )
            )
        except RPCError as err:
            if err.status == RPCStatusCode.UNIMPLEMENTED:
                # e.g. the time-skipping test server: no visibility queries at all.
                return RelatedCases(
                    available=False, note="this Temporal server cannot search cases"
                )
            raise TransientProviderError(f"visibility query failed: {err.message}") from err
        cases.sort(key=lambda c: c.opened_at)
        bound.info("related_cases", found=len(cases))
        return RelatedCases(cases=cases)

    async def _describe(
        self, wf: WorkflowExecution, q: RelatedQuery, pseudonyms: Pseudonyms
    ) -> RelatedCase:
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
        if "reference" in memo:  # opened before the memo was emptied of personal data
            about: dict[str, Any] = {
                k: memo.get(k) for k in ("reference", "asset", "fault", "summary")
            }
        else:
            about = await self._about(wf)
        customer = wf.typed_search_attributes.get(CUSTOMER_KEY)
        return RelatedCase(
            case_id=wf.id,
            kind=memo.get("kind", "unknown"),
            reference=about.get("reference") or "",
            asset=about.get("asset"),
            fault=about.get("fault"),
            summary=about.get("summary") or "",
            opened_at=wf.start_time,
            state=state,
            same_asset=q.asset is not None and about.get("asset") == q.asset,
            same_customer=customer in pseudonyms.forms("customer", q.customer_id),
            resolution=resolution,
        )

    async def _about(self, wf: WorkflowExecution) -> dict[str, Any]:
        """What the case was about, from its input: one history event, decrypted here."""
        page = await self.client.workflow_service.get_workflow_execution_history(
            GetWorkflowExecutionHistoryRequest(
                namespace=self.client.namespace,
                execution=Execution(workflow_id=wf.id, run_id=wf.run_id),
                maximum_page_size=1,
            )
        )
        started = page.history.events[0].workflow_execution_started_event_attributes
        try:
            (data,) = await self.client.data_converter.decode(started.input.payloads)
            incident: dict[str, Any] = data["ticket"]["incident"]
        except Exception as err:  # a key no longer configured, an input of another shape
            # The type only: a validation error's text would quote the (personal) input.
            log.warning("related_case_unreadable", case_id=wf.id, error=type(err).__name__)
            return {"summary": "(details unreadable here)"}
        return {k: incident.get(k) for k in ("reference", "asset", "fault", "summary")}
