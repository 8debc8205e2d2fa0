"""The customer's own page, opened from the link in a message that asks them something.

No login: the link is the credential (`makegood.domain.links`), good for its one case while
its question is open. The page says in plain words what happened, what we did and what comes
next, and lets the customer answer with one tap, send a receipt, or say whether all is well at
the follow-up. Whatever they send is an update from the case's own customer (the id comes
from the case, never from the page), validated by the case like any other.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Final

import structlog
from fastapi import APIRouter, Form, HTTPException, Request, UploadFile, status
from fastapi.responses import Response
from pydantic import ValidationError
from temporalio.client import Client

from makegood.api.deps import Temporal
from makegood.api.pages.web import page, web
from makegood.api.receipt_routes import keep_receipt
from makegood.cases import Busy, CaseNotFound, Refused, Unavailable, case_status, send
from makegood.domain import contract, plain, roles
from makegood.domain.actions import NEEDS_VALUE, CustomerAnswer, ExpenseClaim
from makegood.domain.case import CaseStatus, Stage
from makegood.domain.links import LinkFor
from makegood.domain.money import Money
from makegood.domain.signed import BadToken

log = structlog.get_logger("makegood.api")
router = APIRouter(include_in_schema=False)

EXPIRED: Final = (
    "This link has expired: the question it was for has been answered or has closed. "
    "If something is still not right, reply to our last message and we will help."
)
NOT_OURS: Final = "This link is not valid. Please use the link in our most recent message."
AMOUNT_PLEASE: Final = "Please give the amount on the receipt, such as 18.50."
CLAIMS_UNTIL: Final = (Stage.ACKNOWLEDGE, Stage.DIAGNOSE, Stage.REMEDY, Stage.COMPENSATE)


def _gone(request: Request, message: str, code: int) -> Response:
    return page(request, "customer_gone.html", {"message": message}, code, private=True)


async def _open(
    request: Request, client: Client, token: str
) -> tuple[LinkFor, CaseStatus] | Response:
    """The link's case, if the link is ours, unexpired, and its question still open."""
    try:
        link = web(request).links.read(token, now=datetime.now(UTC))
    except BadToken as err:
        expired = str(err) == "expired"
        return _gone(request, EXPIRED if expired else NOT_OURS, 410 if expired else 404)
    try:
        case = await case_status(client, link.case_id)
    except CaseNotFound:
        return _gone(request, EXPIRED, status.HTTP_410_GONE)
    if case.question is None or case.question.id != link.question_id:
        return _gone(request, EXPIRED, status.HTTP_410_GONE)
    return link, case


def _again(request: Request, token: str, status_: CaseStatus, error: str, code: int) -> Response:
    """The page again, saying why nothing was done."""
    context = _context(token, status_, error=error)
    return page(request, "customer.html", context, code, private=True)


def _context(token: str, s: CaseStatus, **more: object) -> dict[str, object]:
    done = [b for b in s.bookings if b.origin == "rebooked"]
    paid = [c for c in s.compensation if c.state in ("approved", "paid")]
    waiting = [c for c in s.compensation if c.state == "pending"]
    return {
        "token": token,
        "s": s,
        "happened": plain.happened(s.kind),
        "next": plain.NEXT[s.stage],
        "bookings": done,
        "paid": paid,
        "waiting": waiting,
        "claims": s.claims,
        "question": s.question,
        "needs_value": NEEDS_VALUE,
        "may_claim": s.stage in CLAIMS_UNTIL,
        "currency": s.discretion_limit.currency,
        "error": None,
        "thanks": None,
        **more,
    }


@router.get("/c/{token}")
async def customer_page(request: Request, token: str, client: Temporal) -> Response:
    found = await _open(request, client, token)
    if isinstance(found, Response):
        return found
    _, status_ = found
    return page(request, "customer.html", _context(token, status_), private=True)


async def _send(
    request: Request,
    client: Client,
    token: str,
    link: LinkFor,
    status_: CaseStatus,
    action: contract.Action,
    thanks: str,
    *,
    answered: bool,
) -> Response:
    """Send the customer's action; the page again, thanking them (without the question once
    answered: the link has done its job) or saying why the case could not take it."""
    error = None
    try:
        await send(client, status_.case_id, action)
    except (Refused, Busy, Unavailable) as err:
        error = str(err)
    if error is not None:
        return _again(request, token, status_, f"We could not take that: {error}.", 409)
    log.info("customer_action", case_id=status_.case_id, action=type(action).__name__)
    fresh = await case_status(client, status_.case_id)
    context = _context(token, fresh, thanks=thanks)
    if answered or fresh.question is None or fresh.question.id != link.question_id:
        context |= {"question": None, "may_claim": False}
    return page(request, "customer.html", context, private=True)


@router.post("/c/{token}/answer")
async def answer(
    request: Request,
    token: str,
    client: Temporal,
    choice: Annotated[str, Form(max_length=200)] = "",
    value: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    found = await _open(request, client, token)
    if isinstance(found, Response):
        return found
    link, status_ = found
    try:
        action = CustomerAnswer(
            question_id=link.question_id,
            answer=choice,
            value=value.strip() or None,
            by=roles.the_customer(status_.customer_id),
        )
    except ValidationError:
        return _again(request, token, status_, "Please choose one of the answers below.", 422)
    thanks = "Thank you: we have your answer."
    return await _send(request, client, token, link, status_, action, thanks, answered=True)


@router.post("/c/{token}/receipt")
async def receipt(
    request: Request,
    token: str,
    client: Temporal,
    file: UploadFile | None = None,
    amount: Annotated[str, Form(max_length=20)] = "",
    description: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    found = await _open(request, client, token)
    if isinstance(found, Response):
        return found
    link, status_ = found
    currency = status_.discretion_limit.currency
    try:  # the amount first: a file is kept only for a claim that can be made
        money = Money.model_validate({"amount": amount.strip(), "currency": currency})
    except ValidationError:
        return _again(request, token, status_, AMOUNT_PLEASE, 422)
    if file is None or not file.filename:
        return _again(request, token, status_, "Please choose a photo or PDF of the receipt.", 422)
    data = await file.read()
    try:
        limit = request.app.state.settings.max_receipt_bytes
        kept = await keep_receipt(request, client, status_.case_id, data, limit)
    except HTTPException as err:
        return _again(
            request, token, status_, f"We could not take that file: {err.detail}.", err.status_code
        )
    action = ExpenseClaim(
        claim_id=f"receipt-{kept.sha256[:12]}",
        description=description.strip() or "Receipt sent from the customer's page",
        amount=money,
        receipt=(file.filename or "receipt")[:200],
        receipt_sha256=kept.sha256,
        by=roles.the_customer(status_.customer_id),
    )
    thanks = f"Thank you: we have your receipt for {action.amount}."
    return await _send(request, client, token, link, status_, action, thanks, answered=False)
