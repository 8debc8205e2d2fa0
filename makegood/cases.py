"""Case operations on Temporal, for the API (the CLI reaches them through the API)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from makegood.domain import contract
from makegood.domain.actions import Accepted, Actor
from makegood.domain.case import (
    CallbackState,
    CallStatus,
    CaseInput,
    CaseOutcome,
    CaseStatus,
    SlaLevel,
    Stage,
)
from makegood.domain.errors import field_errors
from makegood.domain.intake import ticket_problems
from makegood.domain.playbook import PlaybookSet
from makegood.domain.pseudonyms import Pseudonyms
from makegood.domain.ticket import Ticket
from makegood.privacy.codec import keys_of
from makegood.visibility import ensure_search_attributes

if TYPE_CHECKING:
    from makegood.domain.indexed import IndexedCase
    from makegood.index import CaseIndex

M = TypeVar("M", bound=BaseModel)


class Invalid(ValueError):
    """Input refused before anything was sent, with one `field: reason` line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class TicketRejected(Invalid):
    pass


def build(model: type[M], **fields: Any) -> M:
    try:
        return model.model_validate(fields)
    except ValidationError as err:
        raise Invalid(field_errors(err)) from None


def parse_ticket(raw: str | bytes, playbooks: PlaybookSet) -> Ticket:
    """A validated ticket with a playbook for its kind, or TicketRejected naming every problem."""
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as err:
        raise TicketRejected(
            [f"(body): not valid JSON: {err.msg} at line {err.lineno} column {err.colno}"]
        ) from None
    try:
        ticket = Ticket.model_validate(data)
    except ValidationError as err:
        raise TicketRejected(field_errors(err)) from None
    check_ticket(ticket, playbooks)
    return ticket


def check_ticket(ticket: Ticket, playbooks: PlaybookSet) -> None:
    """A ticket the playbooks can carry to an end, or TicketRejected naming why not."""
    kind = ticket.incident.kind
    if kind not in playbooks.playbooks:
        raise TicketRejected(
            [f"incident.kind: no playbook for {kind.value!r} in playbook set {playbooks.version}"]
        )
    problems = ticket_problems(ticket, playbooks.for_kind(kind))
    if problems:
        raise TicketRejected(problems)


@dataclass
class Opened:
    case_id: str
    created: bool
    run_id: str | None
    handle: WorkflowHandle[Any, CaseOutcome]
    indexed: IndexedCase | None = None  # a duplicate the case index knew (maybe long closed)

    @property
    def note(self) -> str | None:
        """`closed 2026-11-23 12:00 UTC, resolved` for a duplicate of a closed case."""
        return self.indexed.closed_words() if self.indexed is not None else None


def case_search_attributes(ticket: Ticket, pseudonyms: Pseudonyms) -> TypedSearchAttributes:
    """What visibility finds the case by: keyed pseudonyms, never an id, name or text."""
    inc = ticket.incident
    return TypedSearchAttributes(
        [
            SearchAttributePair(
                SearchAttributeKey.for_keyword(contract.SA_CUSTOMER),
                pseudonyms.customer(ticket.customer.id),
            ),
            SearchAttributePair(
                SearchAttributeKey.for_keyword(contract.SA_ASSET),
                pseudonyms.asset(inc.asset or inc.reference),
            ),
            SearchAttributePair(SearchAttributeKey.for_keyword(contract.SA_KIND), inc.kind.value),
            SearchAttributePair(
                SearchAttributeKey.for_keyword(contract.SA_STAGE), Stage.ACKNOWLEDGE.value
            ),
            SearchAttributePair(SearchAttributeKey.for_keyword(contract.SA_SLA), SlaLevel.OK.value),
        ]
    )


def case_memo(ticket: Ticket) -> dict[str, Any]:
    """The memo holds nothing personal and no free text: the kind (and, once closed, the
    resolution). What a later case shows about this one (reference, serial, fault, summary)
    it reads from this case's encrypted input (`makegood.activities.history`)."""
    return {"kind": ticket.incident.kind.value}


# A case's workflow tasks take milliseconds; one a dead worker had taken is given to another
# after this long (the SDK's default is 10 s), so a killed worker's cases resume within seconds.
TASK_TIMEOUT = timedelta(seconds=5)


async def open_case(
    client: Client,
    ticket: Ticket,
    playbooks: PlaybookSet,
    *,
    task_queue: str,
    ops_contact: str,
    opened_by: Actor | None = None,
    index: CaseIndex | None = None,
) -> Opened:
    """Start the case for this ticket; a duplicate ticket returns the existing case.

    The case index is asked first: a ticket whose case closed long ago (and is gone from
    Temporal after the namespace's retention, which frees its workflow id) still returns that
    case, and nothing new starts. `opened_by` is who opened it, from their verified credential
    (never from a payload).
    """
    check_ticket(ticket, playbooks)
    if index is not None:
        known = await index.by_ticket(ticket.id)
        if known is not None:
            return Opened(known.case_id, False, None, case_handle(client, known.case_id), known)
    case_input = CaseInput(
        ticket=ticket,
        playbook=playbooks.for_kind(ticket.incident.kind),
        playbook_version=playbooks.version,
        retries=playbooks.retries,
        ops_contact=ops_contact,
        received_at=datetime.now(UTC),
        opened_by=opened_by,
    )
    try:
        return await _start(client, ticket, case_input, task_queue)
    except RPCError as err:
        if "no mapping defined for search attribute" not in err.message:
            raise
    # A server that has never seen a Makegood worker: register the attributes, then start.
    await ensure_search_attributes(client)
    return await _start(client, ticket, case_input, task_queue)


async def _start(client: Client, ticket: Ticket, case_input: CaseInput, task_queue: str) -> Opened:
    try:
        handle: WorkflowHandle[Any, CaseOutcome] = await client.start_workflow(
            contract.RECOVERY_WORKFLOW,
            case_input,
            result_type=CaseOutcome,
            id=ticket.case_id,
            search_attributes=case_search_attributes(ticket, keys_of(client).pseudonyms),
            memo=case_memo(ticket),
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            task_timeout=TASK_TIMEOUT,
        )
        return Opened(ticket.case_id, True, handle.result_run_id, handle)
    except WorkflowAlreadyStartedError as err:
        return Opened(ticket.case_id, False, err.run_id, case_handle(client, ticket.case_id))


def case_handle(client: Client, case_id: str) -> WorkflowHandle[Any, CaseOutcome]:
    return client.get_workflow_handle(case_id, result_type=CaseOutcome)


class CaseNotFound(LookupError):
    def __init__(self, case_id: str) -> None:
        super().__init__(f"no case {case_id!r}")


class Refused(Exception):
    """The case said no to an action, with the reason; nothing about the case changed."""


class LimitReached(Refused):
    """The case has taken all it takes of this kind (notes, claims, actions): HTTP 429."""


class Busy(Exception):
    """Temporal takes only so many actions on one case at once; try again shortly (429)."""

    retry_after_s = 1


class Unavailable(Exception):
    """Temporal could not answer for the case (unreachable, or the case cannot run): 503."""


async def case_status(client: Client, case_id: str) -> CaseStatus:
    try:
        status: CaseStatus = await case_handle(client, case_id).query(
            contract.STATUS_QUERY, result_type=CaseStatus
        )
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise CaseNotFound(case_id) from None
        raise
    except WorkflowQueryFailedError as err:
        # The case's code cannot run (a deployment problem): say so, never a bare 500.
        raise Unavailable(f"case {case_id} cannot answer right now: {err.message}") from None
    if status.callback is not None and status.callback.state in ("scheduling", "waiting"):
        # A call-back in progress: its own workflow knows how each call is going.
        with contextlib.suppress(RPCError):
            status.callback = await client.get_workflow_handle(contract.callback_id(case_id)).query(
                contract.CALLBACK_STATE_QUERY, result_type=CallbackState
            )
    return status


async def report_call(client: Client, case_id: str, report: CallStatus) -> bool:
    """A telephony provider's status callback, delivered to the case's call-back.

    False when the call-back has already finished: a late or repeated delivery, harmless.
    """
    handle = client.get_workflow_handle(contract.callback_id(case_id))
    try:
        await handle.signal(contract.CALL_STATUS_SIGNAL, report)
        return True
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
    try:
        await handle.describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise Refused(f"case {case_id} has no call-back") from None
        raise
    return False


# Actions on one case are taken one at a time in this process (Temporal refuses more than a
# few in flight per case); another process's are retried briefly when Temporal says busy.
_case_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
BUSY_RETRIES = (0.05, 0.1, 0.2, 0.4, 0.8)


async def send(client: Client, case_id: str, action: contract.Action) -> Accepted:
    """Deliver an answer, claim, decision or note; the case's validator accepts or refuses it.

    Raises Refused with the case's reason (LimitReached past a per-case limit, or because the
    case has ended), CaseNotFound when there is no such case, Busy when Temporal still has
    too many actions in flight on it. A refused action leaves no trace in the case's history.
    """
    lock = _case_locks.get(case_id)
    if lock is None:
        lock = _case_locks[case_id] = asyncio.Lock()
    async with lock:
        for pause in BUSY_RETRIES:
            try:
                return await _deliver(client, case_id, action)
            except RPCError as err:
                if err.status != RPCStatusCode.RESOURCE_EXHAUSTED:
                    raise
                await asyncio.sleep(pause)
        try:
            return await _deliver(client, case_id, action)
        except RPCError as err:
            if err.status == RPCStatusCode.RESOURCE_EXHAUSTED:
                raise Busy(f"case {case_id} has too many actions in flight") from None
            raise


async def _deliver(client: Client, case_id: str, action: contract.Action) -> Accepted:
    handle = case_handle(client, case_id)
    try:
        accepted: Accepted = await handle.execute_update(
            contract.UPDATE_FOR[type(action)], action, result_type=Accepted
        )
        return accepted
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        if isinstance(cause, ApplicationError):
            if cause.type == contract.LIMIT_REACHED:
                raise LimitReached(cause.message) from None
            raise Refused(cause.message) from None
        raise Refused(str(cause)) from None
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
    # NOT_FOUND: either no such case, or it has ended and takes no more actions.
    try:
        described = await handle.describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise CaseNotFound(case_id) from None
        raise
    state = described.status.name.lower() if described.status else "ended"
    raise Refused(f"case {case_id} is closed ({state}) and takes no more actions")


class CaseRow(BaseModel):
    """One case as visibility lists it (no query to the case itself)."""

    case_id: str
    status: str
    kind: str | None
    stage: str | None
    sla: str | None
    started: datetime | None
    closed: datetime | None


async def list_cases(
    client: Client,
    *,
    open_only: bool = False,
    stage: Stage | str | None = None,
    sla: SlaLevel | str | None = None,
    limit: int = 100,
) -> list[CaseRow]:
    """Cases from visibility, newest first; stage and SLA level come from search attributes."""
    from makegood import visibility

    # Built from checked values only (`makegood.visibility`): each one is an enum member.
    clauses = [visibility.equals("WorkflowType", contract.RECOVERY_WORKFLOW)]
    if open_only:
        clauses.append(visibility.equals("ExecutionStatus", "Running"))
    if stage is not None:
        if stage not in set(Stage):
            raise Invalid([f"stage: unknown stage {stage!r}; one of {', '.join(Stage)}"])
        clauses.append(visibility.equals(contract.SA_STAGE, Stage(stage).value))
    if sla is not None:
        if sla not in set(SlaLevel):
            raise Invalid([f"sla: unknown level {sla!r}; one of {', '.join(SlaLevel)}"])
        clauses.append(visibility.equals(contract.SA_SLA, SlaLevel(sla).value))
    keys = {
        name: SearchAttributeKey.for_keyword(name)
        for name in (contract.SA_KIND, contract.SA_STAGE, contract.SA_SLA)
    }
    rows = []
    async for wf in client.list_workflows(" AND ".join(clauses), limit=limit):
        attrs = wf.typed_search_attributes
        status = (
            wf.status.name.lower() if isinstance(wf.status, WorkflowExecutionStatus) else "unknown"
        )
        rows.append(
            CaseRow(
                case_id=wf.id,
                status=status,
                kind=attrs.get(keys[contract.SA_KIND]),
                stage=attrs.get(keys[contract.SA_STAGE]),
                sla=attrs.get(keys[contract.SA_SLA]) or SlaLevel.OK.value,
                started=wf.start_time,
                closed=wf.close_time,
            )
        )
    return rows
