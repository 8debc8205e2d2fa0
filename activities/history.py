"""Earlier cases of the same customer or about the same asset, from Temporal visibility and
the durable case index; and the case's own writes to that index (when it opens and closes).

Visibility matches cases by keyed pseudonyms (`makegood.domain.pseudonyms`); cases opened
before the key existed carry the older unkeyed form, so both are searched. What an earlier case
was about (reference, serial, fault, summary) is personal or free text, so it is not in the
memo: it is read from the earlier case's first history event, its input, which the client's
codec decrypts. Cases whose memo still holds those fields (opened before) are described from
the memo, as they always were. Cases visibility no longer has (past the namespace's retention)
come from the case index (`makegood.index`, by the same keyed pseudonyms) and are described
from their archive's first history event, or with only what the index knows.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import structlog
from temporalio import activity
from temporalio.api.common.v1 import WorkflowExecution as Execution
from temporalio.api.history.v1 import WorkflowExecutionStartedEventAttributes
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryRequest
from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus
from temporalio.common import SearchAttributeKey
from temporalio.service import RPCError, RPCStatusCode

from makegood import visibility
from makegood.adapters.base import TransientProviderError
from makegood.domain import calls, contract
from makegood.domain.case import CaseOutcome, RelatedCase, RelatedCases
from makegood.domain.indexed import CaseClosedRecord, CaseOpenedRecord, IndexedCase
from makegood.domain.provider import RelatedQuery
from makegood.domain.pseudonyms import Pseudonyms

if TYPE_CHECKING:
    from makegood.adapters.blobs import BlobStore
    from makegood.index import CaseIndex

log = structlog.get_logger("makegood.activities")
CUSTOMER_KEY = SearchAttributeKey.for_keyword(contract.SA_CUSTOMER)
LIMIT = 10  # the most recent: enough to spare the customer re-explaining, cheap to read
# What earlier runs were about, by (case id, run id): a run's input never changes, and a busy
# customer's next case would otherwise read the same ten histories again.
ABOUT_CACHE = 1024


def related_query(q: RelatedQuery, pseudonyms: Pseudonyms) -> str:
    """Cases of this customer or asset, under the keyed and the legacy pseudonyms."""
    customer = visibility.one_of(contract.SA_CUSTOMER, pseudonyms.forms("customer", q.customer_id))
    asset = visibility.one_of(contract.SA_ASSET, pseudonyms.forms("asset", q.asset or q.reference))
    cases = visibility.equals("WorkflowType", contract.RECOVERY_WORKFLOW)
    return f"{cases} AND ({customer} OR {asset})"


class HistoryActivities:
    def __init__(
        self,
        client: Client,
        pseudonyms: Pseudonyms | None = None,
        index: CaseIndex | None = None,
        archive: BlobStore | None = None,
    ) -> None:
        self.client = client
        self.pseudonyms = pseudonyms
        self.index = index
        self.archive = archive
        self._abouts: OrderedDict[tuple[str, str | None], dict[str, Any]] = OrderedDict()

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
        seen = {c.case_id for c in cases} | {q.case_id}
        cases += await self._from_index(q, self.pseudonyms, seen)
        cases.sort(key=lambda c: c.opened_at)
        bound.info("related_cases", found=len(cases))
        return RelatedCases(cases=cases[-LIMIT:])

    # ---- the case index
    def _row(self, rec: CaseOpenedRecord, pseudonyms: Pseudonyms) -> IndexedCase:
        return IndexedCase(
            case_id=rec.case_id,
            ticket_id=rec.ticket_id,
            kind=rec.kind,
            customer=pseudonyms.customer(rec.customer_id),
            asset=pseudonyms.asset(rec.asset),
            opened_at=rec.opened_at,
        )

    @activity.defn(name=calls.INDEX_CASE_OPENED.name)
    async def index_case_opened(self, rec: CaseOpenedRecord) -> None:
        if self.index is None or self.pseudonyms is None:
            log.debug("case_index_off", case_id=rec.case_id)
            return
        await self.index.record_opened(self._row(rec, self.pseudonyms))

    @activity.defn(name=calls.INDEX_CASE_CLOSED.name)
    async def index_case_closed(self, rec: CaseClosedRecord) -> None:
        if self.index is None or self.pseudonyms is None:
            log.debug("case_index_off", case_id=rec.opened.case_id)
            return
        row = self._row(rec.opened, self.pseudonyms)
        row.closed_at, row.resolution, row.outcome = rec.closed_at, rec.resolution, rec.outcome
        await self.index.record_closed(row)

    async def _from_index(
        self, q: RelatedQuery, pseudonyms: Pseudonyms, seen: set[str]
    ) -> list[RelatedCase]:
        """Earlier cases visibility no longer lists (past retention), from the case index."""
        if self.index is None:
            return []
        customer = pseudonyms.customer(q.customer_id)
        asset = pseudonyms.asset(q.asset or q.reference)
        try:
            rows = await self.index.related([customer], [asset], LIMIT + len(seen))
        except Exception as err:  # the index is a help here, never a reason to fail the look-up
            log.warning("case_index_unavailable", case_id=q.case_id, error=type(err).__name__)
            return []
        cases = []
        for row in rows:
            if row.case_id in seen:
                continue
            about = await self._archived_about(row)
            cases.append(
                RelatedCase(
                    case_id=row.case_id,
                    kind=row.kind,
                    reference=about.get("reference") or "",
                    asset=about.get("asset"),
                    fault=about.get("fault"),
                    summary=about.get("summary") or "(archived: only what the case index keeps)",
                    opened_at=row.opened_at,
                    state="closed" if row.closed_at else "unknown",
                    same_asset=q.asset is not None and row.asset == asset,
                    same_customer=row.customer == customer,
                    resolution=row.resolution,
                )
            )
        return cases

    async def _archived_about(self, row: IndexedCase) -> dict[str, Any]:
        """What an archived case was about, from its first run's first event."""
        if self.archive is None or row.archive_key is None:
            return {}
        from makegood.archiver import Archived

        try:
            histories = await Archived(row, self.archive, row.archive_key).histories()
            first = next(h for h in histories if h.workflow_id == row.case_id)
        except Exception as err:  # unreachable store, a damaged archive: the index's word only
            log.warning("archived_case_unreadable", case_id=row.case_id, error=type(err).__name__)
            return {}
        started = first.events[0].workflow_execution_started_event_attributes
        return await self._incident(row.case_id, started)

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
        """What the case was about, from its input: one history event, decrypted here (once
        per run while this worker remembers it)."""
        key = (wf.id, wf.run_id)
        if key in self._abouts:
            self._abouts.move_to_end(key)
            return self._abouts[key]
        page = await self.client.workflow_service.get_workflow_execution_history(
            GetWorkflowExecutionHistoryRequest(
                namespace=self.client.namespace,
                execution=Execution(workflow_id=wf.id, run_id=wf.run_id),
                maximum_page_size=1,
            )
        )
        started = page.history.events[0].workflow_execution_started_event_attributes
        about = await self._incident(wf.id, started)
        if about.get("reference") is not None:  # read: worth keeping (unreadable may change)
            self._abouts[key] = about
            if len(self._abouts) > ABOUT_CACHE:
                self._abouts.popitem(last=False)
        return about

    async def _incident(
        self, case_id: str, started: WorkflowExecutionStartedEventAttributes
    ) -> dict[str, Any]:
        try:
            (data,) = await self.client.data_converter.decode(started.input.payloads)
            incident: dict[str, Any] = data["ticket"]["incident"]
        except Exception as err:  # a key no longer configured, an input of another shape
            # The type only: a validation error's text would quote the (personal) input.
            log.warning("related_case_unreadable", case_id=case_id, error=type(err).__name__)
            return {"summary": "(details unreadable here)"}
        return {k: incident.get(k) for k in ("reference", "asset", "fault", "summary")}
