"""The intake API: helpdesk webhooks and people open cases, act on them, and read them;
providers report call and payment outcomes. OpenAPI at /docs and /openapi.json."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any, Final

from fastapi import APIRouter, FastAPI, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client
from temporalio.service import RPCError

from makegood.api import (
    case_routes,
    codec_routes,
    receipt_routes,
    report_routes,
    webhook_routes,
)
from makegood.api.auth import Tokens
from makegood.api.bodies import Problem, ProblemReport
from makegood.api.deps import Temporal
from makegood.api.limits import BodyLimit
from makegood.api.pages import install as pages
from makegood.api.replay_store import replay_guard
from makegood.api.responses import (
    BODY_REFUSED,
    TEMPORAL,
    Responses,
    describe_durations_as_sent,
    responses,
)
from makegood.api.unavailable import handle_temporal_errors
from makegood.cases import Busy, CaseNotFound, Invalid, LimitReached, Refused, Unavailable
from makegood.connection import IMPATIENT, connect, connection_keys, load_connection
from makegood.domain.errors import reason
from makegood.index import opened_index
from makegood.settings import Settings

ROUTERS: Final = (
    case_routes.router,
    receipt_routes.router,
    report_routes.router,
    webhook_routes.router,
    codec_routes.router,
)
"""Every route besides health and readiness, in the order the OpenAPI document lists them."""


def _responses(router: APIRouter) -> Responses:
    """What a router's routes may answer besides their own responses: every route can refuse a
    body (BodyLimit); those that talk to Temporal can find it unreachable (503)."""
    talks_to_temporal = router in (case_routes.router, receipt_routes.router, webhook_routes.router)
    return responses(BODY_REFUSED, TEMPORAL) if talks_to_temporal else BODY_REFUSED


NESTED_TOO_DEEPLY: Final = "the JSON is nested too deeply to read"
_NOT_VALID: Final = "the request is not valid; nothing was done"


def create_app(settings: Settings, client: Client | None = None) -> FastAPI:
    """The API for these settings; it connects to Temporal on start-up unless given a client."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if client is None:
            connection = load_connection(settings)
            app.state.client = await connect(
                connection, connection_keys(settings, connection), retry=IMPATIENT
            )
        else:
            app.state.client = client
        # The case index: duplicates of long-closed tickets, and archived cases' look-ups.
        async with opened_index(
            settings.case_index, default=settings.case_index_default, database=settings.database_url
        ) as idx:
            app.state.index = idx
            yield

    app = FastAPI(
        title="Makegood intake API", version="1.0", lifespan=lifespan, description=__doc__
    )
    app.state.settings = settings
    app.state.playbooks = settings.playbook_set  # a bad playbook file stops start-up here
    app.state.archive = settings.archive()
    app.state.tokens = Tokens(settings.api_tokens)
    app.state.guard = replay_guard(
        settings.data_dir, settings.webhook_tolerance_s, settings.database_url
    )
    _handle_errors(app)
    handle_temporal_errors(app)
    codec_routes.allow_ui_origin(app, settings.ui_origin)
    pages.install(app, settings)
    # Added last, so outermost: a body is complete and within the limit before anything else
    # (CORS, tokens, routes) sees the request, and an abandoned one reaches none of them.
    app.add_middleware(
        BodyLimit,
        max_bytes=settings.max_body_bytes,
        larger=[receipt_routes.upload_limit(settings), *pages.upload_limits(settings)],
    )

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
        return JSONResponse(
            {"status": "ready", "temporal": client.service_client.config.target_host}
        )

    for router in ROUTERS:
        app.include_router(router, responses=_responses(router))
    describe_durations_as_sent(app)
    return app


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


def _handle_errors(app: FastAPI) -> None:
    """Errors are always a machine-readable list, never a stack trace."""

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, err: RequestValidationError) -> JSONResponse:
        try:
            problems = _problems(list(err.errors()))
        except RecursionError:  # a deeply nested value, shown in a reason
            problems = [Problem(field="(body)", reason=NESTED_TOO_DEEPLY)]
        report = ProblemReport(detail=_NOT_VALID, problems=problems)
        return JSONResponse(report.model_dump(), status.HTTP_422_UNPROCESSABLE_CONTENT)

    @app.exception_handler(HTTPException)
    async def _unreadable(request: Request, err: HTTPException) -> Response:
        # FastAPI turns a RecursionError of the JSON parser (`[[[[...]]]]`, thousands deep)
        # into a bare 400; it is a problem with the body like any other.
        if isinstance(err.__cause__, RecursionError):
            report = ProblemReport(
                detail=_NOT_VALID, problems=[Problem(field="(body)", reason=NESTED_TOO_DEEPLY)]
            )
            return JSONResponse(report.model_dump(), status.HTTP_422_UNPROCESSABLE_CONTENT)
        return await http_exception_handler(request, err)

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

    @app.exception_handler(LimitReached)
    async def _limit(_: Request, err: LimitReached) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status.HTTP_429_TOO_MANY_REQUESTS)

    @app.exception_handler(Busy)
    async def _busy(_: Request, err: Busy) -> JSONResponse:
        return JSONResponse(
            {"detail": f"{err}; try again in a moment"},
            status.HTTP_429_TOO_MANY_REQUESTS,
            headers={"Retry-After": str(err.retry_after_s)},
        )

    @app.exception_handler(Unavailable)
    async def _unavailable(_: Request, err: Unavailable) -> JSONResponse:
        return JSONResponse(
            {"detail": str(err)}, status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": "5"}
        )

    @app.exception_handler(CaseNotFound)
    async def _missing(_: Request, err: CaseNotFound) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status.HTTP_404_NOT_FOUND)
