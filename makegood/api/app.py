"""The intake API: helpdesk webhooks and people open cases, act on them, and read them;
providers report call and payment outcomes. OpenAPI at /docs and /openapi.json."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any, Literal

import structlog
from fastapi import Body, Depends, FastAPI, HTTPException, Path, Query, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, EmailStr, Field, ValidationError
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from makegood.api.auth import (
    Caller,
    ReplayGuard,
    Tokens,
    require,
    verify_standard_webhook,
    verify_zendesk,
)
from makegood.api.zendesk import ZendeskWebhook, to_ticket
from makegood.audit.server import case_histories
from makegood.audit.timeline import as_html, as_json, as_markdown, timeline
from makegood.cases import (
    CaseNotFound,
    CaseRow,
    Invalid,
    Refused,
    TicketRejected,
    case_status,
    list_cases,
    open_case,
    report_call,
    send,
)
from makegood.connection import connect
from makegood.domain import contract
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
from makegood.domain.case import CallStatus, CaseStatus, PaymentEvent, SlaLevel, Stage
from makegood.domain.errors import reason
from makegood.domain.money import Money
from makegood.domain.provider import CallOutcome
from makegood.domain.ticket import LongText, SafeId, ShortText, Ticket
from makegood.settings import Settings

log = structlog.get_logger("makegood.api")

CaseId = Annotated[
    str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,80}$", description="case-<ticket id>")
]


def temporal(request: Request) -> Client:
    return request.app.state.client  # type: ignore[no-any-return]


Temporal = Annotated[Client, Depends(temporal)]
Agent = Annotated[Caller, Depends(require("agent", "manager"))]
Manager = Annotated[Caller, Depends(require("manager"))]
Reader = Annotated[Caller, Depends(require("agent", "manager", "auditor"))]
Auditor = Annotated[Caller, Depends(require("auditor", "manager"))]


class Problem(BaseModel):
    field: str
    reason: str


class ProblemReport(BaseModel):
    detail: str
    problems: list[Problem] = []


class Opened(BaseModel):
    case_id: str
    created: bool
    run_id: str | None


class AnswerBody(BaseModel):
    question_id: ShortText
    answer: ShortText
    value: SafeId | None = None
    comment: LongText | None = None


class ClaimBody(BaseModel):
    claim_id: SafeId
    description: ShortText
    amount: Money
    receipt: ShortText | None = None


class DecisionBody(BaseModel):
    request_id: ShortText
    approved: bool
    note: LongText | None = None


class NoteBody(BaseModel):
    text: LongText


class AssignBody(BaseModel):
    to: Annotated[
        str,
        Field(pattern=r"^(agent|manager):[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", examples=["agent:sam"]),
    ]
    contact: EmailStr | None = None


class ReasonBody(BaseModel):
    reason: LongText


class TelephonyEvent(BaseModel):
    case_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,80}$")]
    call_id: ShortText
    status: CallOutcome


class PaymentNotice(BaseModel):
    type: Literal["payment.settled", "payment.failed", "payment.refunded"]
    idempotency_key: Annotated[str, Field(pattern=r"^case-[A-Za-z0-9._-]+:.+$", max_length=200)]
    payment_id: ShortText | None = None
    reason: LongText | None = None


class Delivery(BaseModel):
    delivered: bool
    note: str


def _problems(errors: list[Any]) -> list[Problem]:
    out = []
    for e in errors:
        if e.get("type") == "json_invalid":
            where = e.get("loc", ("body", "?"))[-1]
            detail = (e.get("ctx") or {}).get("error", "")
            out.append(
                Problem(field="(body)", reason=f"JSON decode error at character {where}: {detail}")
            )
            continue
        loc = [str(p) for p in e.get("loc", ()) if p not in ("body",)]
        out.append(Problem(field=".".join(loc) or "(body)", reason=reason(e)))
    return out


def create_app(settings: Settings, client: Client | None = None) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.client = client or await connect(settings)
        yield

    app = FastAPI(
        title="Makegood intake API", version="1.0", lifespan=lifespan, description=__doc__
    )
    app.state.settings = settings
    app.state.tokens = Tokens(settings.api_tokens)
    app.state.guard = ReplayGuard(settings.webhook_tolerance_s)
    playbooks = settings.playbook_set

    # ---- errors: always a machine-readable list, never a stack trace
    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, err: RequestValidationError) -> JSONResponse:
        report = ProblemReport(
            detail="the request is not valid; nothing was done",
            problems=_problems(list(err.errors())),
        )
        return JSONResponse(report.model_dump(), status.HTTP_422_UNPROCESSABLE_CONTENT)

    @app.exception_handler(Invalid)
    async def _rejected(_: Request, err: Invalid) -> JSONResponse:
        problems = [
            Problem(field=p.partition(": ")[0], reason=p.partition(": ")[2]) for p in err.problems
        ]
        report = ProblemReport(detail="refused; nothing was started or sent", problems=problems)
        return JSONResponse(report.model_dump(), status.HTTP_422_UNPROCESSABLE_CONTENT)

    @app.exception_handler(Refused)
    async def _refused(_: Request, err: Refused) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status.HTTP_409_CONFLICT)

    @app.exception_handler(CaseNotFound)
    async def _missing(_: Request, err: CaseNotFound) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status.HTTP_404_NOT_FOUND)

    @app.middleware("http")
    async def _limit_body(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > settings.max_body_bytes):
            return JSONResponse(
                {"detail": f"body larger than {settings.max_body_bytes} bytes"},
                status.HTTP_413_CONTENT_TOO_LARGE,
            )
        if request.method in ("POST", "PUT", "PATCH"):
            body = await request.body()
            if len(body) > settings.max_body_bytes:
                return JSONResponse(
                    {"detail": f"body larger than {settings.max_body_bytes} bytes"},
                    status.HTTP_413_CONTENT_TOO_LARGE,
                )
        return await call_next(request)

    # ---- health
    @app.get("/health", tags=["health"])
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready", tags=["health"], responses={503: {"model": ProblemReport}})
    async def ready(client: Temporal) -> JSONResponse:
        try:
            await client.workflow_service.get_system_info(GetSystemInfoRequest())
        except RPCError as err:
            return JSONResponse(
                {"status": "not ready", "detail": err.message}, status.HTTP_503_SERVICE_UNAVAILABLE
            )
        return JSONResponse({"status": "ready", "temporal": settings.temporal_address})

    # ---- cases
    async def _open(client: Client, ticket: Ticket, response: Response) -> Opened:
        if ticket.incident.kind not in playbooks.playbooks:
            raise TicketRejected(
                [
                    f"incident.kind: no playbook for {ticket.incident.kind.value!r}"
                    f" in playbook set {playbooks.version}"
                ]
            )
        opened = await open_case(
            client,
            ticket,
            playbooks,
            task_queue=settings.task_queue,
            ops_contact=settings.ops_contact,
        )
        response.status_code = status.HTTP_201_CREATED if opened.created else status.HTTP_200_OK
        log.info(
            "case_opened" if opened.created else "duplicate_ticket",
            case_id=opened.case_id,
            source=ticket.source,
        )
        return Opened(case_id=opened.case_id, created=opened.created, run_id=opened.run_id)

    @app.post(
        "/cases",
        tags=["cases"],
        status_code=201,
        responses={
            200: {"model": Opened, "description": "duplicate: the existing case"},
            422: {"model": ProblemReport},
        },
    )
    async def open_ticket(
        ticket: Ticket, response: Response, who: Agent, client: Temporal
    ) -> Opened:
        return await _open(client, ticket, response)

    @app.get("/cases", tags=["cases"])
    async def cases(
        who: Reader,
        client: Temporal,
        stage: Stage | None = None,
        sla: SlaLevel | None = None,
        open: bool = False,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[CaseRow]:
        return await list_cases(client, open_only=open, stage=stage, sla=sla, limit=limit)

    @app.get("/cases/{case_id}", tags=["cases"], responses={404: {"model": ProblemReport}})
    async def get_case(case_id: CaseId, who: Reader, client: Temporal) -> CaseStatus:
        return await case_status(client, case_id)

    @app.get("/cases/{case_id}/timeline", tags=["audit"], responses={404: {"model": ProblemReport}})
    async def get_timeline(
        case_id: CaseId,
        who: Auditor,
        client: Temporal,
        format: Literal["json", "md", "html"] = "json",
    ) -> Response:
        found = await case_histories(client, case_id)
        if not found:
            raise CaseNotFound(case_id)
        lines = timeline(found)
        if format == "md":
            return PlainTextResponse(as_markdown(lines, case_id), media_type="text/markdown")
        if format == "html":
            return HTMLResponse(as_html(lines, case_id))
        return Response(as_json(lines), media_type="application/json")

    async def _act(client: Client, case_id: str, action: Any) -> Accepted:
        accepted = await send(client, case_id, action)
        log.info("case_action", case_id=case_id, action=type(action).__name__, by=str(action.by))
        return accepted

    def _build(model: type[BaseModel], **fields: Any) -> Any:
        try:
            return model.model_validate(fields)
        except ValidationError as err:
            raise RequestValidationError(err.errors()) from None

    acted = {404: {"model": ProblemReport}, 409: {"model": ProblemReport}}

    @app.post("/cases/{case_id}/answers", tags=["actions"], responses=acted)
    async def answer(case_id: CaseId, body: AnswerBody, who: Agent, client: Temporal) -> Accepted:
        return await _act(
            client, case_id, _build(CustomerAnswer, **body.model_dump(), by=who.actor)
        )

    @app.post("/cases/{case_id}/claims", tags=["actions"], responses=acted)
    async def claim(case_id: CaseId, body: ClaimBody, who: Agent, client: Temporal) -> Accepted:
        return await _act(client, case_id, _build(ExpenseClaim, **body.model_dump(), by=who.actor))

    @app.post("/cases/{case_id}/approvals", tags=["actions"], responses=acted)
    async def approve(
        case_id: CaseId, body: DecisionBody, who: Manager, client: Temporal
    ) -> Accepted:
        return await _act(
            client, case_id, _build(ApprovalDecision, **body.model_dump(), by=who.actor)
        )

    @app.post("/cases/{case_id}/notes", tags=["actions"], responses=acted)
    async def note(case_id: CaseId, body: NoteBody, who: Agent, client: Temporal) -> Accepted:
        return await _act(client, case_id, _build(AgentNote, text=body.text, by=who.actor))

    @app.post("/cases/{case_id}/assign", tags=["actions"], responses=acted)
    async def assign(case_id: CaseId, body: AssignBody, who: Agent, client: Temporal) -> Accepted:
        return await _act(
            client,
            case_id,
            _build(AssignCase, to=Actor.parse(body.to), contact=body.contact, by=who.actor),
        )

    @app.post("/cases/{case_id}/escalate", tags=["actions"], responses=acted)
    async def escalate(case_id: CaseId, body: ReasonBody, who: Agent, client: Temporal) -> Accepted:
        return await _act(client, case_id, _build(EscalateCase, reason=body.reason, by=who.actor))

    @app.post("/cases/{case_id}/cancel", tags=["actions"], responses=acted)
    async def cancel(case_id: CaseId, body: ReasonBody, who: Agent, client: Temporal) -> Accepted:
        return await _act(client, case_id, _build(CancelCase, reason=body.reason, by=who.actor))

    # ---- machines: signed webhooks
    @app.post(
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
    async def zendesk(request: Request, response: Response, client: Temporal) -> Opened:
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
        return await _open(client, ticket, response)

    def _signed(request: Request, body: bytes) -> str:
        return verify_standard_webhook(
            settings.webhook_secret,
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

    @app.post(
        "/callbacks/telephony",
        tags=["callbacks"],
        status_code=202,
        responses={401: {"model": ProblemReport}, 404: {"model": ProblemReport}},
    )
    async def telephony(
        request: Request, event: Annotated[TelephonyEvent, Body()], client: Temporal
    ) -> Delivery:
        delivery = _signed(request, await request.body())
        await _exists(client, event.case_id)
        report = CallStatus(call_id=event.call_id, status=event.status, event_id=delivery)
        if await report_call(client, event.case_id, report):
            return Delivery(delivered=True, note=f"call {event.call_id} {event.status}")
        return Delivery(delivered=False, note="the call-back has finished; nothing to do")

    @app.post(
        "/callbacks/payments",
        tags=["callbacks"],
        status_code=202,
        responses={401: {"model": ProblemReport}, 404: {"model": ProblemReport}},
    )
    async def payments(
        request: Request, notice: Annotated[PaymentNotice, Body()], client: Temporal
    ) -> Delivery:
        delivery = _signed(request, await request.body())
        case_id = notice.idempotency_key.split(":", 1)[0]
        await _exists(client, case_id)
        event = PaymentEvent(
            event_id=delivery,
            type=notice.type.removeprefix("payment."),
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

    return app
