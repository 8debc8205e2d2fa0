"""The agent console: the inbox of open cases, and a case's page (live with htmx, a Refresh
link without it)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import quote

from fastapi import APIRouter, Request, status
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from temporalio.client import Client, WorkflowHistory
from temporalio.service import RPCError

from makegood.adapters.blobs import BlobMissing
from makegood.api.deps import AppSettings, Index, Temporal
from makegood.api.pages import views
from makegood.api.pages.session import Session, Staff, checked_form
from makegood.api.pages.web import page
from makegood.api.receipt_routes import receipt_store
from makegood.archiver import find_archived
from makegood.audit.server import case_histories
from makegood.audit.summary import summarize
from makegood.audit.timeline import Line, timeline
from makegood.cases import (
    CaseNotFound,
    CaseRow,
    Unavailable,
    case_status,
    list_cases,
    open_case,
)
from makegood.domain import contract, roles
from makegood.domain.actions import NEEDS_VALUE
from makegood.domain.case import CaseStatus, SlaLevel, Stage
from makegood.domain.errors import field_errors
from makegood.domain.receipts import SHA256_PATTERN, blob_key, sniff
from makegood.domain.ticket import Ticket
from makegood.privacy.codec import decode_history

router = APIRouter(include_in_schema=False)
INBOX_LIMIT: Final = 100
AT_ONCE: Final = 8  # status queries in flight for one inbox


async def statuses(client: Client, rows: Sequence[CaseRow]) -> list[CaseStatus | None]:
    """Each listed case's status, a few at a time; None where the case could not answer."""
    gate = asyncio.Semaphore(AT_ONCE)

    async def one(row: CaseRow) -> CaseStatus | None:
        async with gate:
            try:
                return await case_status(client, row.case_id)
            except (CaseNotFound, Unavailable, RPCError):
                return None

    return list(await asyncio.gather(*(one(r) for r in rows)))


def unlisted(request: Request, session: Session, err: RPCError) -> Response:
    """Temporal could not list cases (down, or a server without visibility): said, not a 500."""
    reason = f"Temporal could not list the cases just now ({err.message}). Try again shortly."
    return page(request, "refused.html", {"session": session, "reason": reason}, 503)


def forbidden(request: Request, session: Session, action: str) -> Response | None:
    reason = roles.refusal(session.actor, action)
    if reason is None:
        return None
    return page(request, "refused.html", {"session": session, "reason": reason}, 403)


@router.get("/console")
async def inbox(
    request: Request,
    session: Staff,
    client: Temporal,
    stage: Stage | None = None,
    sla: SlaLevel | None = None,
    kind: str | None = None,
    mine: bool = False,
) -> Response:
    if refused := forbidden(request, session, roles.LIST):
        return refused
    try:
        rows = await list_cases(client, open_only=True, stage=stage, sla=sla, limit=INBOX_LIMIT)
    except RPCError as err:
        return unlisted(request, session, err)
    now = datetime.now(UTC)
    me = str(session.actor)
    items: list[dict[str, Any]] = []
    for row, case in zip(rows, await statuses(client, rows), strict=True):
        if case is None:
            items.append({"row": row, "status": None})
            continue
        if (mine and case.owner != me) or (kind and case.kind != kind):
            continue
        clock = views.clock(case, now)
        items.append(
            {
                "row": row,
                "status": case,
                "clock": clock,
                "level": clock.level.value if clock else "ok",
                "waits": views.waits_for(case),
            }
        )
    # Breached first, then warned, then the rest, each oldest first.
    order = {"breached": 0, "warning": 1, "ok": 2}
    items.sort(key=lambda i: (order.get(i.get("level", "ok"), 2), i["row"].started or now))
    context = {
        "session": session,
        "items": items,
        "stages": list(Stage),
        "levels": list(SlaLevel),
        "kinds": sorted({i["status"].kind for i in items if i["status"] is not None}),
        "filters": {
            "stage": stage.value if stage else "",
            "sla": sla.value if sla else "",
            "kind": kind or "",
            "mine": mine,
        },
        "limit": INBOX_LIMIT,
    }
    return page(request, "inbox.html", context)


async def _timeline(
    client: Client, case_id: str, found: list[WorkflowHistory] | None = None
) -> tuple[list[Line], list[str]]:
    found = found if found is not None else await case_histories(client, case_id)
    lines = timeline([await decode_history(h, client.data_converter) for h in found])
    return lines, summarize(lines)


def case_context(session: Session, status: CaseStatus, **more: Any) -> dict[str, Any]:
    may = {
        name: session.may(action)
        for name, action in (
            ("answer", contract.ANSWER),
            ("claim", contract.SUBMIT_CLAIM),
            ("decide", contract.DECIDE),
            ("note", contract.ADD_NOTE),
            ("assign", contract.ASSIGN),
            ("escalate", contract.ESCALATE),
            ("cancel", contract.CANCEL),
            ("timeline", roles.TIMELINE),
        )
    }
    now = datetime.now(UTC)
    return {
        "session": session,
        "s": status,
        "open": status.stage != Stage.CLOSED,
        "may": may,
        "clock": views.clock(status, now),
        "waits": views.waits_for(status),
        "needs_value": NEEDS_VALUE,
        "four_eyes": views.involvement(status, str(session.actor)),
        "error": None,
        "done": None,
        **more,
    }


async def case_page(
    request: Request,
    session: Session,
    client: Client,
    case_id: str,
    *,
    error: str | None = None,
    done: str | None = None,
    status_code: int = 200,
) -> Response:
    archived = None
    try:
        status = await case_status(client, case_id)
    except CaseNotFound:
        # Past the namespace's retention: its final status, from the archive, read-only.
        app = request.app.state
        archived = await find_archived(app.index, app.archive, case_id)
        if archived is None:
            reason = f"There is no case {case_id}, in Temporal or in the archive."
            return page(request, "refused.html", {"session": session, "reason": reason}, 404)
        status = await archived.status(client.data_converter)
        status.archived = archived.note
    context = case_context(session, status, error=error, done=done)
    if context["may"]["timeline"]:
        histories = await archived.histories() if archived else None
        context["lines"], context["summary"] = await _timeline(client, case_id, histories)
    return page(request, "case.html", context, status_code)


@router.get("/console/cases/{case_id}")
async def show_case(
    request: Request, case_id: str, session: Staff, client: Temporal, done: str | None = None
) -> Response:
    if refused := forbidden(request, session, roles.STATUS):
        return refused
    return await case_page(request, session, client, case_id, done=done)


@router.get("/console/cases/{case_id}/live")
async def live(request: Request, case_id: str, session: Staff, client: Temporal) -> Response:
    """The part of the case page that changes by itself: htmx asks for it every few seconds."""
    if refused := forbidden(request, session, roles.STATUS):
        return refused
    try:
        status = await case_status(client, case_id)
    except CaseNotFound:
        return Response(status_code=204)
    return page(request, "case_live.html", case_context(session, status))


@router.get("/console/open")
async def open_form(request: Request, session: Staff) -> Response:
    if refused := forbidden(request, session, roles.OPEN):
        return refused
    return page(request, "open.html", {"session": session, "error": None, "ticket": ""})


@router.post("/console/open")
async def open_from_ticket(
    request: Request, session: Staff, client: Temporal, settings: AppSettings, index: Index
) -> Response:
    """Open a case from a ticket pasted as JSON: the same call as POST /cases."""
    if refused := forbidden(request, session, roles.OPEN):
        return refused
    form = await checked_form(request, session)
    raw = form.get("ticket")
    text = raw if isinstance(raw, str) else ""
    try:
        ticket = Ticket.model_validate_json(text)
        opened = await open_case(
            client,
            ticket,
            settings.playbook_set,
            task_queue=settings.task_queue,
            ops_contact=settings.ops_contact,
            opened_by=session.actor,
            index=index,
        )
    except ValidationError as err:
        problems = "; ".join(field_errors(err))
        context = {"session": session, "error": f"Nothing was started: {problems}", "ticket": text}
        return page(request, "open.html", context, 422)
    said = "opened" if opened.created else f"this ticket already has its case ({opened.note})"
    target = f"/console/cases/{quote(opened.case_id)}?done={quote(said)}"
    return RedirectResponse(target, status.HTTP_303_SEE_OTHER)


@router.get("/console/receipts/{digest}")
async def receipt_file(request: Request, digest: str, session: Staff) -> Response:
    """A claim's receipt file, for the staff who read cases: shown as the file it is (its type
    told by its first bytes), in a sandbox, never cached."""
    if refused := forbidden(request, session, roles.STATUS):
        return refused
    missing = {"session": session, "reason": "There is no receipt file with that digest."}
    if not re.fullmatch(SHA256_PATTERN, digest):
        return page(request, "refused.html", missing, 404)
    try:
        data = await receipt_store(request).get(blob_key(digest))
    except BlobMissing:
        return page(request, "refused.html", missing, 404)
    kind = sniff(data) or "application/octet-stream"
    return Response(
        data,
        media_type=kind,
        headers={
            "Content-Security-Policy": "sandbox; default-src 'none'; img-src 'self'",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
            "Content-Disposition": f'inline; filename="receipt-{digest[:12]}"',
        },
    )
