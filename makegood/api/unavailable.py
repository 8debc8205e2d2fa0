"""503 with the reason when Temporal cannot answer, instead of a bare 500 and a traceback.

Every route that reads or changes a case talks to Temporal. When it is down, restarting or
overloaded, the SDK retries for a while and then raises: an RPCError (UNAVAILABLE, or
DEADLINE_EXCEEDED and RESOURCE_EXHAUSTED), a timed-out update, or, for a client that connects
lazily, a RuntimeError from the connection. Those are the service's state, not a bug: the
caller gets 503, what happened and where, and Retry-After; the log gets one warning line with
the route and the code. Any other error stays a 500 (and a traceback in the log).
"""

from __future__ import annotations

from typing import Final

import structlog
from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse
from temporalio.client import RPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

from makegood.api.bodies import ProblemReport

RETRY_AFTER_S: Final = 5
"""What the 503 tells the caller to wait: about what a restarting frontend needs."""

_CONNECT_FAILED: Final = "Failed client connect: "  # the SDK's words for a lazy connection

log = structlog.get_logger("makegood.api")


def _where(request: Request) -> str:
    client = getattr(request.app.state, "client", None)
    try:
        return str(client.service_client.config.target_host)  # type: ignore[union-attr]
    except AttributeError:
        return "its address"


def unavailable(request: Request, what: str, why: str, code: str) -> JSONResponse:
    """503: Temporal `what` (e.g. "is unreachable at host:port"), because `why`."""
    log.warning("temporal_unavailable", path=request.url.path, code=code)
    report = ProblemReport(detail=f"Temporal {what}: {why}")
    return JSONResponse(
        report.model_dump(),
        status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"retry-after": str(RETRY_AFTER_S)},
    )


def handle_temporal_errors(app: FastAPI) -> None:
    @app.exception_handler(RPCError)
    async def _rpc(request: Request, err: RPCError) -> JSONResponse:
        where = _where(request)
        if err.status == RPCStatusCode.UNAVAILABLE:
            what = f"is unreachable at {where}"
        elif err.status == RPCStatusCode.DEADLINE_EXCEEDED:
            what = f"at {where} did not answer in time"
        elif err.status == RPCStatusCode.RESOURCE_EXHAUSTED:
            what = f"at {where} takes no more requests for now"
        else:
            raise err  # a refusal or a bug: a 500 with its traceback
        return unavailable(request, what, err.message or err.status.name, err.status.name)

    @app.exception_handler(RPCTimeoutOrCancelledError)
    async def _timeout(request: Request, err: RPCTimeoutOrCancelledError) -> JSONResponse:
        what = f"at {_where(request)} did not answer in time"
        return unavailable(request, what, str(err) or "timed out", "TIMEOUT")

    @app.exception_handler(RuntimeError)
    async def _connect(request: Request, err: RuntimeError) -> JSONResponse:
        text = str(err)
        if not text.startswith(_CONNECT_FAILED):
            raise err
        why = text.removeprefix(_CONNECT_FAILED)[:300]
        return unavailable(request, f"is unreachable at {_where(request)}", why, "CONNECT")
