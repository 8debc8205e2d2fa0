"""What every request must satisfy before any route, token or signature check sees it.

`BodyLimit` reads the whole body first, as it arrives, counting bytes: past the limit it answers
413 at once and closes the connection, whether the client declared a Content-Length or streams
chunks without one, so an unauthenticated upload costs at most the limit in memory. A body that
does not arrive within `timeout_s` gets 408, so stalled clients do not hold a request open
forever; one that is abandoned (the client disconnects mid-body) ends quietly, with a debug
line and nothing else. Only a complete body within the limit reaches the app, replayed as one
message.

A few routes take more than the global limit (a receipt file): `Larger` names them by method
and path pattern, with their own limit, setting name and time allowance, counted the same way.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import structlog
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from makegood.api.bodies import Problem, ProblemReport

BODY_TIMEOUT_S: Final = 30.0
"""How long a whole request body may take to arrive (a 64 KiB body: at least ~2 KB/s)."""

log = structlog.get_logger("makegood.api")


class _Abandoned(Exception):
    """The client went away before its body was complete."""


class _TooLarge(Exception):
    """More bytes arrived than the limit allows."""


def refusal(status: int, detail: str, reason: str) -> JSONResponse:
    """A problem report that also ends the connection: the rest of the body is never read."""
    report = ProblemReport(detail=detail, problems=[Problem(field="(body)", reason=reason)])
    return JSONResponse(report.model_dump(), status, headers={"connection": "close"})


def too_large(limit: int, setting: str = "MAKEGOOD_MAX_BODY_BYTES") -> JSONResponse:
    return refusal(
        413,
        f"body larger than {limit} bytes ({setting}); nothing was done",
        f"larger than {limit} bytes",
    )


@dataclass(frozen=True)
class Larger:
    """Requests (method, full-match path pattern) allowed a larger body than the rest."""

    method: str
    path: re.Pattern[str]
    max_bytes: int
    setting: str
    timeout_s: float = BODY_TIMEOUT_S


class BodyLimit:
    """Pure ASGI middleware: bodies are counted while they stream in, before anything else."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        timeout_s: float = BODY_TIMEOUT_S,
        larger: Sequence[Larger] = (),
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self.larger = tuple(larger)

    def _limits(self, scope: Scope) -> tuple[int, str, float]:
        for rule in self.larger:
            if scope["method"] == rule.method and rule.path.fullmatch(scope["path"]):
                return rule.max_bytes, rule.setting, rule.timeout_s
        return self.max_bytes, "MAKEGOOD_MAX_BODY_BYTES", self.timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        where = {"method": scope["method"], "path": scope["path"]}
        max_bytes, setting, timeout_s = self._limits(scope)
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            log.info("request_refused", status=413, declared=int(declared), **where)
            await too_large(max_bytes, setting)(scope, receive, send)
            return
        try:
            async with asyncio.timeout(timeout_s):
                body = await self._read(receive, max_bytes)
        except _TooLarge:
            log.info("request_refused", status=413, **where)
            await too_large(max_bytes, setting)(scope, receive, send)
            return
        except TimeoutError:
            log.info("request_refused", status=408, **where)
            response = refusal(
                408,
                f"the body did not arrive within {timeout_s:g} s; nothing was done",
                "incomplete",
            )
            await response(scope, receive, send)
            return
        except _Abandoned:
            log.debug("request_abandoned", **where)
            return  # uvicorn knows the client is gone and expects no response

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: only the client's disconnect is left

        await self.app(scope, replay, send)

    async def _read(self, receive: Receive, max_bytes: int) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Abandoned
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > max_bytes:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)
