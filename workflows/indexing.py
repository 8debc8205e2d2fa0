"""The case's two writes to the durable case index (`makegood.index`): when it opens and when
it closes. Neither may hold the case up for long or fail it: the index is bookkeeping beside
the case's own history, and a write that gives up leaves an event saying so (the archiver's
`makegood archive --backfill` fills the gap from visibility while Temporal still has the case).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from makegood.domain import calls
    from makegood.domain.case import CaseOutcome
    from makegood.domain.indexed import CaseClosedRecord, CaseOpenedRecord

from makegood.workflows.case import Case, execute, failure_reason

OPEN_PATCH = "case-index"
# Its own patch id: a case that opened before the index existed is still indexed as it closes.
CLOSE_PATCH = "case-index-on-close"
INDEX_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=6,
)


def opened_record(case: Case) -> CaseOpenedRecord:
    inc = case.incident
    return CaseOpenedRecord(
        case_id=case.id,
        ticket_id=case.ticket.id,
        kind=inc.kind.value,
        customer_id=case.customer.id,
        asset=inc.asset or inc.reference,
        opened_at=case.status.opened_at,
    )


async def index_opened(case: Case) -> None:
    if not workflow.patched(OPEN_PATCH):
        return
    try:
        await execute(calls.INDEX_CASE_OPENED, opened_record(case), retry=INDEX_RETRY)
    except ActivityError as err:
        case.event("index", f"case index not updated: {failure_reason(err)}")


async def index_closed(case: Case, outcome: CaseOutcome) -> None:
    if not workflow.patched(CLOSE_PATCH):
        return
    record = CaseClosedRecord(
        opened=opened_record(case),
        closed_at=outcome.closed_at,
        resolution=outcome.resolution,
        outcome=outcome,
    )
    try:
        await execute(calls.INDEX_CASE_CLOSED, record, retry=INDEX_RETRY)
    except ActivityError as err:
        case.event("index", f"case index not updated: {failure_reason(err)}")
