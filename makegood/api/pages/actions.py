"""The console's forms: each one the same update the API route sends (`makegood.cases.send`),
by the signed-in person, refused with the case's own reason shown in the page."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote

import structlog
from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData, UploadFile
from temporalio.client import Client

from makegood.api.bodies import AssignBody
from makegood.api.deps import Temporal
from makegood.api.pages.console import case_page, forbidden
from makegood.api.pages.session import Session, Staff, checked_form
from makegood.api.receipt_routes import keep_receipt
from makegood.cases import Busy, CaseNotFound, Invalid, Refused, Unavailable, send
from makegood.domain import contract
from makegood.domain.actions import (
    Actor,
    AgentNote,
    ApprovalDecision,
    AssignCase,
    CancelCase,
    CustomerAnswer,
    EscalateCase,
    ExpenseClaim,
)
from makegood.domain.errors import reason

log = structlog.get_logger("makegood.api")
router = APIRouter(include_in_schema=False)


def text(form: FormData, name: str) -> str | None:
    value = form.get(name)
    return value.strip() or None if isinstance(value, str) else None


def problems(err: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'form'}: {reason(e)}" for e in err.errors()
    )


async def act(
    request: Request,
    session: Session,
    client: Client,
    case_id: str,
    update: str,
    make: Callable[[FormData], Any],
    back: str | None = None,
) -> Response:
    """Check the form, make the action of it, send it; back to the page (`back`, else the
    case's) with what the case said, or the case page with why nothing was done."""
    if refused := forbidden(request, session, update):
        return refused
    form = await checked_form(request, session)
    error, code = None, status.HTTP_409_CONFLICT
    try:
        action = await make(form) if inspect.iscoroutinefunction(make) else make(form)
        accepted = await send(client, case_id, action)
    except ValidationError as err:
        error, code = problems(err), status.HTTP_422_UNPROCESSABLE_CONTENT
    except Invalid as err:
        error, code = "; ".join(err.problems), status.HTTP_422_UNPROCESSABLE_CONTENT
    except (Refused, Busy, Unavailable) as err:
        error = str(err)
    except HTTPException as err:  # a receipt file refused
        error, code = str(err.detail), err.status_code
    except CaseNotFound as err:
        error, code = str(err), status.HTTP_404_NOT_FOUND
    if error is not None:
        return await case_page(
            request, session, client, case_id, error=f"Nothing was done: {error}", status_code=code
        )
    log.info("case_action", case_id=case_id, action=update, by=str(session.actor), via="console")
    target = back or f"/console/cases/{quote(case_id)}"
    return RedirectResponse(f"{target}?done={quote(accepted.detail)}", status.HTTP_303_SEE_OTHER)


M = TypeVar("M", bound=BaseModel)


def _validated(model: type[M], **fields: Any) -> M:
    return model.model_validate(fields)


@router.post("/console/cases/{case_id}/answer")
async def answer(request: Request, case_id: str, session: Staff, client: Temporal) -> Response:
    def make(form: FormData) -> CustomerAnswer:
        return _validated(
            CustomerAnswer,
            question_id=text(form, "question_id"),
            answer=text(form, "answer"),
            value=text(form, "value"),
            by=session.actor,
        )

    return await act(request, session, client, case_id, contract.ANSWER, make)


@router.post("/console/cases/{case_id}/claim")
async def claim(request: Request, case_id: str, session: Staff, client: Temporal) -> Response:
    async def make(form: FormData) -> ExpenseClaim:
        digest = None
        upload = form.get("receipt_file")
        if isinstance(upload, UploadFile) and upload.filename:
            data = await upload.read()
            limit = request.app.state.settings.max_receipt_bytes
            digest = (await keep_receipt(request, client, case_id, data, limit)).sha256
        return _validated(
            ExpenseClaim,
            claim_id=text(form, "claim_id"),
            description=text(form, "description"),
            amount={"amount": text(form, "amount"), "currency": text(form, "currency")},
            receipt=upload.filename if isinstance(upload, UploadFile) else None,
            receipt_sha256=digest,
            by=session.actor,
        )

    return await act(request, session, client, case_id, contract.SUBMIT_CLAIM, make)


@router.post("/console/cases/{case_id}/decide")
async def decide(request: Request, case_id: str, session: Staff, client: Temporal) -> Response:
    def make(form: FormData) -> ApprovalDecision:
        decision = text(form, "decision")
        part = None
        if decision == "part":  # approve only the amount given
            part = {"amount": text(form, "amount"), "currency": text(form, "currency")}
        return _validated(
            ApprovalDecision,
            request_id=text(form, "request_id"),
            approved=decision in ("approve", "part"),
            note=text(form, "note"),
            amount=part,
            by=session.actor,
        )

    back = "/console/approvals" if text(await request.form(), "from") == "desk" else None
    return await act(request, session, client, case_id, contract.DECIDE, make, back)


@router.post("/console/cases/{case_id}/note")
async def note(request: Request, case_id: str, session: Staff, client: Temporal) -> Response:
    def make(form: FormData) -> AgentNote:
        return _validated(AgentNote, text=text(form, "text"), by=session.actor)

    return await act(request, session, client, case_id, contract.ADD_NOTE, make)


@router.post("/console/cases/{case_id}/assign")
async def assign(request: Request, case_id: str, session: Staff, client: Temporal) -> Response:
    def make(form: FormData) -> AssignCase:
        body = AssignBody.model_validate(
            {"to": text(form, "to") or str(session.actor), "contact": text(form, "contact")}
        )
        return _validated(
            AssignCase, to=Actor.parse(body.to), contact=body.contact, by=session.actor
        )

    return await act(request, session, client, case_id, contract.ASSIGN, make)


@router.post("/console/cases/{case_id}/escalate")
async def escalate(request: Request, case_id: str, session: Staff, client: Temporal) -> Response:
    def make(form: FormData) -> EscalateCase:
        return _validated(EscalateCase, reason=text(form, "reason"), by=session.actor)

    return await act(request, session, client, case_id, contract.ESCALATE, make)


@router.post("/console/cases/{case_id}/cancel")
async def cancel(request: Request, case_id: str, session: Staff, client: Temporal) -> Response:
    def make(form: FormData) -> CancelCase:
        return _validated(CancelCase, reason=text(form, "reason"), by=session.actor)

    return await act(request, session, client, case_id, contract.CANCEL, make)
