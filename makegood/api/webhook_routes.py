"""Machines' routes, authenticated by signature rather than token: the Zendesk webhook opens
cases; telephony and payment providers report how calls and payments went, each signing with
its own secret, so that one provider cannot forge the other's events."""

from __future__ import annotations

from typing import Annotated, Final, Literal

import structlog
from fastapi import APIRouter, Body, HTTPException, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import SecretStr, ValidationError
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from makegood.api.auth import verify_standard_webhook, verify_zendesk
from makegood.api.bodies import Delivery, Opened, PaymentNotice, ProblemReport, TelephonyEvent
from makegood.api.case_routes import open_ticket_case
from makegood.api.deps import AppSettings, Playbooks, Temporal
from makegood.api.zendesk import ZendeskWebhook, to_ticket
from makegood.cases import CaseNotFound, report_call
from makegood.domain import contract, roles
from makegood.domain.case import CallStatus, PaymentEvent
from makegood.domain.ticket import Ticket

log = structlog.get_logger("makegood.api")

router = APIRouter()

_EVENT_TYPE: Final[dict[str, Literal["settled", "failed", "refunded"]]] = {
    "payment.settled": "settled",
    "payment.failed": "failed",
    "payment.refunded": "refunded",
}


@router.post(
    "/webhooks/zendesk",
    tags=["webhooks"],
    status_code=201,
    responses={
        200: {"model": Opened},
        401: {"model": ProblemReport},
        409: {"model": ProblemReport},
        422: {"model": ProblemReport},
    },
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {
                    "schema": ZendeskWebhook.model_json_schema(
                        ref_template="#/components/schemas/{model}"
                    )
                }
            },
            "required": True,
        }
    },
)
async def zendesk(
    request: Request,
    response: Response,
    client: Temporal,
    settings: AppSettings,
    playbooks: Playbooks,
) -> Opened:
    body = await request.body()
    verify_zendesk(
        settings.zendesk_secret,
        request.app.state.guard,
        settings.webhook_tolerance_s,
        body,
        dict(request.headers),
    )
    try:
        payload = ZendeskWebhook.model_validate_json(body)
        ticket = Ticket.model_validate(to_ticket(payload))
    except ValidationError as err:
        raise RequestValidationError(err.errors()) from None
    return await open_ticket_case(client, settings, playbooks, ticket, response, roles.ZENDESK)


def _signed(request: Request, secret: SecretStr, body: bytes) -> str:
    """The delivery id of a Standard Webhooks delivery; 401 or 409 if it is not a fresh one."""
    return verify_standard_webhook(
        secret,
        request.app.state.guard,
        body,
        {k.lower(): v for k, v in request.headers.items()},
    )


async def _exists(client: Client, case_id: str) -> None:
    try:
        await client.get_workflow_handle(case_id).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise CaseNotFound(case_id) from None
        raise


@router.post(
    "/callbacks/telephony",
    tags=["callbacks"],
    status_code=202,
    responses={401: {"model": ProblemReport}, 404: {"model": ProblemReport}},
)
async def telephony(
    request: Request,
    event: Annotated[TelephonyEvent, Body()],
    client: Temporal,
    settings: AppSettings,
) -> Delivery:
    delivery = _signed(request, settings.telephony_webhook_secret, await request.body())
    await _exists(client, event.case_id)
    report = CallStatus(call_id=event.call_id, status=event.status, event_id=delivery)
    if await report_call(client, event.case_id, report):
        return Delivery(delivered=True, note=f"call {event.call_id} {event.status}")
    return Delivery(delivered=False, note="the call-back has finished; nothing to do")


@router.post(
    "/callbacks/payments",
    tags=["callbacks"],
    status_code=202,
    responses={401: {"model": ProblemReport}, 404: {"model": ProblemReport}},
)
async def payments(
    request: Request,
    notice: Annotated[PaymentNotice, Body()],
    client: Temporal,
    settings: AppSettings,
) -> Delivery:
    delivery = _signed(request, settings.payments_webhook_secret, await request.body())
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
