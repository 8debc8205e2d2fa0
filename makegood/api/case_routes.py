"""People's routes: open a case from a ticket, list and read cases, act on one."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import structlog
from fastapi import APIRouter, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, PlainTextResponse
from pydantic import BaseModel, ValidationError
from temporalio.client import Client

from makegood.api.bodies import (
    AnswerBody,
    AssignBody,
    ClaimBody,
    DecisionBody,
    NoteBody,
    Opened,
    ReasonBody,
)
from makegood.api.deps import (
    AppSettings,
    Archive,
    CaseId,
    Index,
    MayAnswer,
    MayAssign,
    MayAudit,
    MayCancel,
    MayClaim,
    MayDecide,
    MayEscalate,
    MayList,
    MayNote,
    MayOpen,
    MayRead,
    Playbooks,
    Temporal,
)
from makegood.api.examples import TICKETS
from makegood.api.receipt_routes import STORE_DOWN, check_uploaded
from makegood.api.responses import (
    BAD_BODY,
    BAD_QUERY,
    CASE,
    REFUSED,
    TEMPORAL,
    TOKEN,
    UNREADABLE,
    responses,
)
from makegood.archiver import find_archived
from makegood.audit.formats import as_html, as_json, as_markdown
from makegood.audit.server import case_histories
from makegood.audit.summary import summarize
from makegood.audit.timeline import timeline
from makegood.cases import (
    CaseNotFound,
    CaseRow,
    case_status,
    list_cases,
    open_case,
    send,
)
from makegood.domain.actions import (
    Accepted,
    Actor,
    AgentNote,
    ApprovalDecision,
    AssignCase,
    CancelCase,
    CustomerAnswer,
    EscalateCase,
    ExpenseClaim,
)
from makegood.domain.case import CaseStatus, SlaLevel, Stage
from makegood.domain.playbook import PlaybookSet
from makegood.domain.ticket import Ticket
from makegood.index import CaseIndex
from makegood.privacy.codec import decode_history
from makegood.settings import Settings

log = structlog.get_logger("makegood.api")
router = APIRouter()


async def open_ticket_case(
    client: Client,
    settings: Settings,
    playbooks: PlaybookSet,
    ticket: Ticket,
    response: Response,
    opened_by: Actor,
    index: CaseIndex | None = None,
) -> Opened:
    """Start the case for a ticket (201), or find the one it already has (200), even long
    closed and gone from Temporal (the case index knows it)."""
    opened = await open_case(
        client,
        ticket,
        playbooks,
        task_queue=settings.task_queue,
        ops_contact=settings.ops_contact,
        opened_by=opened_by,
        index=index,
    )
    response.status_code = status.HTTP_201_CREATED if opened.created else status.HTTP_200_OK
    log.info(
        "case_opened" if opened.created else "duplicate_ticket",
        case_id=opened.case_id,
        source=ticket.source,
    )
    return Opened(
        case_id=opened.case_id,
        created=opened.created,
        run_id=opened.run_id,
        playbook_version=playbooks.version if opened.created else None,
        note=opened.note,
    )


@router.post(
    "/cases",
    tags=["cases"],
    status_code=201,
    responses=responses(
        {200: {"model": Opened, "description": "duplicate: the existing case"}},
        TOKEN,
        UNREADABLE,
        BAD_BODY,
        TEMPORAL,
    ),
    openapi_extra={"requestBody": {"content": {"application/json": {"examples": TICKETS}}}},
)
async def open_ticket(
    ticket: Ticket,
    response: Response,
    who: MayOpen,
    client: Temporal,
    settings: AppSettings,
    playbooks: Playbooks,
    index: Index,
) -> Opened:
    return await open_ticket_case(client, settings, playbooks, ticket, response, who.actor, index)


@router.get("/cases", tags=["cases"], responses=responses(TOKEN, BAD_QUERY, TEMPORAL))
async def cases(
    who: MayList,
    client: Temporal,
    stage: Stage | None = None,
    sla: SlaLevel | None = None,
    open: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[CaseRow]:
    return await list_cases(client, open_only=open, stage=stage, sla=sla, limit=limit)


@router.get(
    "/cases/{case_id}", tags=["cases"], responses=responses(TOKEN, CASE, BAD_QUERY, TEMPORAL)
)
async def get_case(
    case_id: CaseId, who: MayRead, client: Temporal, index: Index, archive: Archive
) -> CaseStatus:
    try:
        return await case_status(client, case_id)
    except CaseNotFound:
        archived = await find_archived(index, archive, case_id)
        if archived is None:
            raise
    # Gone from Temporal (past the namespace's retention): its final status, from the archive.
    status = await archived.status(client.data_converter)
    status.archived = archived.note
    return status


@router.get(
    "/cases/{case_id}/timeline",
    tags=["audit"],
    responses=responses(
        {
            200: {
                "description": "the case's timeline, in the format asked for",
                "content": {
                    "text/markdown": {"schema": {"type": "string"}},
                    "text/html": {"schema": {"type": "string"}},
                },
            }
        },
        TOKEN,
        CASE,
        BAD_QUERY,
        TEMPORAL,
    ),
)
async def get_timeline(
    case_id: CaseId,
    who: MayAudit,
    client: Temporal,
    index: Index,
    archive: Archive,
    format: Literal["json", "md", "html"] = "json",
) -> Response:
    found = await case_histories(client, case_id)
    headers = {}
    if not found:  # gone from Temporal (past retention): from the archive, and it says so
        archived = await find_archived(index, archive, case_id)
        if archived is None:
            raise CaseNotFound(case_id)
        found = await archived.histories()
        headers[SOURCE_HEADER] = archived.note
    lines = timeline([await decode_history(h, client.data_converter) for h in found])
    if format == "md":
        return PlainTextResponse(
            as_markdown(lines, case_id, summarize(lines)),
            media_type="text/markdown",
            headers=headers,
        )
    if format == "html":
        return HTMLResponse(as_html(lines, case_id, summarize(lines)), headers=headers)
    return Response(as_json(lines), media_type="application/json", headers=headers)


SOURCE_HEADER = "Makegood-Source"  # `from the archive, closed ...` when Temporal had no history


# ---- actions: the caller's identity from the token is the action's `by`
async def _act(client: Client, case_id: str, action: Any) -> Accepted:
    accepted = await send(client, case_id, action)
    log.info("case_action", case_id=case_id, action=type(action).__name__, by=str(action.by))
    return accepted


def _build(model: type[BaseModel], **fields: Any) -> Any:
    try:
        return model.model_validate(fields)
    except ValidationError as err:
        raise RequestValidationError(err.errors()) from None


_ACTED = responses(TOKEN, CASE, REFUSED, UNREADABLE, BAD_BODY, TEMPORAL)


@router.post("/cases/{case_id}/answers", tags=["actions"], responses=_ACTED)
async def answer(case_id: CaseId, body: AnswerBody, who: MayAnswer, client: Temporal) -> Accepted:
    return await _act(client, case_id, _build(CustomerAnswer, **body.model_dump(), by=who.actor))


@router.post("/cases/{case_id}/claims", tags=["actions"], responses=responses(_ACTED, STORE_DOWN))
async def claim(
    case_id: CaseId, body: ClaimBody, who: MayClaim, client: Temporal, request: Request
) -> Accepted:
    """An expense claim; its receipt, if named by digest, must have been uploaded first (the
    case checks again, and refuses a receipt its customer claimed before, or holds it)."""
    if body.receipt_sha256 is not None:
        await check_uploaded(request, body.receipt_sha256)
    return await _act(client, case_id, _build(ExpenseClaim, **body.model_dump(), by=who.actor))


@router.post("/cases/{case_id}/approvals", tags=["actions"], responses=_ACTED)
async def approve(
    case_id: CaseId, body: DecisionBody, who: MayDecide, client: Temporal
) -> Accepted:
    return await _act(client, case_id, _build(ApprovalDecision, **body.model_dump(), by=who.actor))


@router.post("/cases/{case_id}/notes", tags=["actions"], responses=_ACTED)
async def note(case_id: CaseId, body: NoteBody, who: MayNote, client: Temporal) -> Accepted:
    return await _act(client, case_id, _build(AgentNote, text=body.text, by=who.actor))


@router.post("/cases/{case_id}/assign", tags=["actions"], responses=_ACTED)
async def assign(case_id: CaseId, body: AssignBody, who: MayAssign, client: Temporal) -> Accepted:
    return await _act(
        client,
        case_id,
        _build(AssignCase, to=Actor.parse(body.to), contact=body.contact, by=who.actor),
    )


@router.post("/cases/{case_id}/escalate", tags=["actions"], responses=_ACTED)
async def escalate(
    case_id: CaseId, body: ReasonBody, who: MayEscalate, client: Temporal
) -> Accepted:
    return await _act(client, case_id, _build(EscalateCase, reason=body.reason, by=who.actor))


@router.post("/cases/{case_id}/cancel", tags=["actions"], responses=_ACTED)
async def cancel(case_id: CaseId, body: ReasonBody, who: MayCancel, client: Temporal) -> Accepted:
    return await _act(client, case_id, _build(CancelCase, reason=body.reason, by=who.actor))
