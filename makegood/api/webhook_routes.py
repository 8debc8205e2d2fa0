"""Machines' routes, authenticated by signature rather than token: the Zendesk webhook opens
cases; telephony and payment providers report how calls and payments went, and the SMS provider
delivers customers' texted replies, each signing with its own secret, so that one provider
cannot forge another's events.

Each route checks the signature over the raw bytes first, then parses them (422 with the
problems, whatever the bytes), then claims the delivery in the durable replay guard
(makegood.api.replay_store): a delivery is recorded only once it was processed, and released
when processing fails, so that the provider's retry of it can succeed.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final, Literal, TypeVar

import structlog
from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, SecretStr, ValidationError
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from makegood.api.auth import verify_standard_webhook, verify_zendesk
from makegood.api.bodies import Delivery, Opened, PaymentNotice, SmsReply, TelephonyEvent
from makegood.api.case_routes import open_ticket_case
from makegood.api.deps import AppSettings, Playbooks, Temporal
from makegood.api.replay_store import DeliveryGuard, GuardUnavailable, Replayed
from makegood.api.responses import BAD_BODY, SIGNED, TEMPORAL, Responses, problem, responses
from makegood.api.zendesk import EXAMPLE as ZENDESK_EXAMPLE
from makegood.api.zendesk import ZendeskWebhook, to_ticket
from makegood.cases import CaseNotFound, Refused, case_status, report_call, send
from makegood.domain import contract, plain, roles
from makegood.domain.actions import NEEDS_VALUE, CustomerAnswer
from makegood.domain.case import CallStatus, PaymentEvent
from makegood.domain.ticket import Ticket
from makegood.privacy.codec import keys_of

log = structlog.get_logger("makegood.api")

router = APIRouter()
M = TypeVar("M", bound=BaseModel)

_EVENT_TYPE: Final[dict[str, Literal["settled", "failed", "refunded"]]] = {
    "payment.settled": "settled",
    "payment.failed": "failed",
    "payment.refunded": "refunded",
}


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref", "")
        if ref.startswith("#/$defs/"):
            rest = {k: v for k, v in node.items() if k != "$ref"}
            return {**_inline(defs[ref.removeprefix("#/$defs/")], defs), **rest}
        return {k: _inline(v, defs) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


def json_body(model: type[BaseModel], *examples: dict[str, Any]) -> dict[str, Any]:
    """`openapi_extra` declaring `model` as the JSON body. These routes read the raw bytes
    (the signature covers them), so FastAPI cannot describe the body itself; nested models are
    inlined, as the document's components do not hold them."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})
    content: dict[str, Any] = {"schema": _inline(schema, defs)}
    if examples:
        content["examples"] = {f"example {n}": {"value": e} for n, e in enumerate(examples, 1)}
    return {"requestBody": {"content": {"application/json": content}, "required": True}}


def parsed(model: type[M], body: bytes) -> M:
    """The body as `model`, or 422 with the problems: never a 500, whatever the bytes."""
    try:
        data = json.loads(body)
    except RecursionError:
        raise _json_invalid(0, "nested too deeply") from None
    except json.JSONDecodeError as err:
        raise _json_invalid(err.pos, err.msg) from None
    except ValueError as err:  # bytes that are no Unicode text
        raise _json_invalid(getattr(err, "start", 0), "not UTF-8 text") from None
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise RequestValidationError(err.errors()) from None


def _json_invalid(position: int, error: str) -> RequestValidationError:
    """The error FastAPI raises for a body that is not JSON, so that it reads the same."""
    return RequestValidationError(
        [
            {
                "type": "json_invalid",
                "loc": ("body", position),
                "msg": "JSON decode error",
                "input": {},
                "ctx": {"error": error},
            }
        ]
    )


@asynccontextmanager
async def once(
    request: Request, source: str, delivery: str, signed_at: float
) -> AsyncIterator[None]:
    """Process this delivery unless it was (or is being) processed: 409 then; 503 if the
    replay store cannot be used."""
    guard: DeliveryGuard = request.app.state.guard
    shown = delivery[:100]
    try:
        claim = await guard.claim(guard.key(source, delivery), signed_at)
    except Replayed as err:
        if err.state == "pending":
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                f"delivery {shown} is being processed; retry later",
                headers={"Retry-After": "5"},
            ) from None
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"delivery {shown} was already received"
        ) from None
    except GuardUnavailable as err:
        log.error("webhook_replay_store_unavailable", error=str(err))
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "the webhook replay store is unavailable; nothing was done",
        ) from None
    async with guard.holding(claim):
        yield


@router.post(
    "/webhooks/zendesk",
    tags=["webhooks"],
    status_code=201,
    responses=responses(
        {200: {"model": Opened, "description": "duplicate: the ticket's existing case"}},
        SIGNED,
        BAD_BODY,
        TEMPORAL,
    ),
    openapi_extra=json_body(ZendeskWebhook, ZENDESK_EXAMPLE),
)
async def zendesk(
    request: Request,
    response: Response,
    client: Temporal,
    settings: AppSettings,
    playbooks: Playbooks,
) -> Opened:
    body = await request.body()
    signature, signed_at = verify_zendesk(
        settings.zendesk_secret, settings.webhook_tolerance_s, body, dict(request.headers)
    )
    payload = parsed(ZendeskWebhook, body)
    try:
        ticket = Ticket.model_validate(to_ticket(payload))
    except ValidationError as err:
        raise RequestValidationError(err.errors()) from None
    async with once(request, "zendesk", signature, signed_at):
        return await open_ticket_case(
            client, settings, playbooks, ticket, response, roles.ZENDESK, request.app.state.index
        )


def _signed(
    request: Request, secret: SecretStr, tolerance_s: int, body: bytes
) -> tuple[str, float]:
    """The delivery id and signed time of a Standard Webhooks delivery; 401 if not signed."""
    return verify_standard_webhook(
        secret, tolerance_s, body, {k.lower(): v for k, v in request.headers.items()}
    )


async def _exists(client: Client, case_id: str) -> None:
    try:
        await client.get_workflow_handle(case_id).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise CaseNotFound(case_id) from None
        raise


_NO_CASE: Final[Responses] = {
    404: problem("no such case; the delivery can be retried once it exists")
}


@router.post(
    "/callbacks/telephony",
    tags=["callbacks"],
    status_code=202,
    responses=responses(
        SIGNED,
        _NO_CASE,
        {409: problem("a replayed delivery, or a case with no call-back: retry later")},
        BAD_BODY,
        TEMPORAL,
    ),
    openapi_extra=json_body(
        TelephonyEvent, {"case_id": "case-T-1001", "call_id": "call_1", "status": "completed"}
    ),
)
async def telephony(request: Request, client: Temporal, settings: AppSettings) -> Delivery:
    body = await request.body()
    delivery, signed_at = _signed(
        request, settings.telephony_webhook_secret, settings.webhook_tolerance_s, body
    )
    event = parsed(TelephonyEvent, body)
    async with once(request, "telephony", delivery, signed_at):
        await _exists(client, event.case_id)
        report = CallStatus(call_id=event.call_id, status=event.status, event_id=delivery)
        if await report_call(client, event.case_id, report):
            return Delivery(delivered=True, note=f"call {event.call_id} {event.status}")
        return Delivery(delivered=False, note="the call-back has finished; nothing to do")


@router.post(
    "/callbacks/payments",
    tags=["callbacks"],
    status_code=202,
    responses=responses(
        SIGNED,
        _NO_CASE,
        {409: problem("a replayed delivery, or a failed payment of a closed case")},
        BAD_BODY,
        TEMPORAL,
    ),
    openapi_extra=json_body(
        PaymentNotice,
        {"type": "payment.settled", "idempotency_key": "case-T-1001:refund", "payment_id": "p_1"},
    ),
)
async def payments(request: Request, client: Temporal, settings: AppSettings) -> Delivery:
    body = await request.body()
    delivery, signed_at = _signed(
        request, settings.payments_webhook_secret, settings.webhook_tolerance_s, body
    )
    notice = parsed(PaymentNotice, body)
    async with once(request, "payments", delivery, signed_at):
        return await _payment(client, notice, delivery)


async def _payment(client: Client, notice: PaymentNotice, delivery: str) -> Delivery:
    case_id = notice.idempotency_key.split(":", 1)[0]
    await _exists(client, case_id)
    event = PaymentEvent(
        event_id=delivery,
        type=_EVENT_TYPE[notice.type],
        idempotency_key=notice.idempotency_key,
        payment_id=notice.payment_id,
        reason=notice.reason,
    )
    try:
        await client.get_workflow_handle(case_id).signal(contract.PAYMENT_EVENT_SIGNAL, event)
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        log.warning("payment_event_for_closed_case", case_id=case_id, type=notice.type)
        if event.type == "failed":
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                f"case {case_id} is closed: a person must handle this failed payment",
            ) from None
        return Delivery(delivered=False, note=f"case {case_id} is closed; recorded in logs")
    return Delivery(delivered=True, note=f"{notice.type} for {notice.idempotency_key}")


@router.post(
    "/callbacks/sms",
    tags=["callbacks"],
    status_code=202,
    responses=responses(SIGNED, {409: problem("a replayed delivery")}, BAD_BODY, TEMPORAL),
    openapi_extra=json_body(SmsReply, {"from": "+15550100042", "text": "2"}),
)
async def sms_reply(request: Request, client: Temporal, settings: AppSettings) -> Delivery:
    """A customer's texted reply answers the question last sent to their number by SMS: "1"
    or "2" (as the message lists the answers), or the answer's word. Anything else, or a
    number no question waits on, is taken and answered with why nothing was done."""
    body = await request.body()
    delivery, signed_at = _signed(
        request, settings.sms_webhook_secret, settings.webhook_tolerance_s, body
    )
    reply = parsed(SmsReply, body)
    async with once(request, "sms", delivery, signed_at):
        return await _answer_by_sms(request, client, reply)


async def _answer_by_sms(request: Request, client: Client, reply: SmsReply) -> Delivery:
    contact = keys_of(client).pseudonyms.contact(reply.from_)
    waiting = await request.app.state.index.awaiting_reply(contact)
    if waiting is None:
        return Delivery(delivered=False, note="no question waits for a reply from this number")
    case_id, question_id = waiting
    try:
        status_ = await case_status(client, case_id)
    except CaseNotFound:
        return Delivery(delivered=False, note="the case this number was asked about has closed")
    question = status_.question
    if question is None or question.id != question_id:
        return Delivery(delivered=False, note=f"{case_id}: the question {question_id} has closed")
    chosen = plain.reply_choice(reply.text, question.choices)
    if chosen is None or chosen in NEEDS_VALUE:
        log.info("sms_reply_unclear", case_id=case_id, question_id=question_id)
        return Delivery(
            delivered=False,
            note=f"{case_id}: the reply names none of the answers to {question_id} "
            f"({', '.join(question.choices)}); the customer's link still works",
        )
    answer = CustomerAnswer(
        question_id=question_id,
        answer=chosen,
        comment="answered by text message",
        by=roles.the_customer(status_.customer_id),
    )
    try:
        await send(client, case_id, answer)
    except Refused as err:
        return Delivery(delivered=False, note=f"{case_id} refused it: {err}")
    log.info("sms_reply_answered", case_id=case_id, question_id=question_id)
    return Delivery(delivered=True, note=f"{case_id}: {question_id} answered {chosen}")
