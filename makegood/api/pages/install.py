"""The pages' part of the API app: routes, static files, and what a page does on errors."""

from __future__ import annotations

import re

from fastapi import FastAPI, Request, status
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from makegood.api.limits import Larger
from makegood.api.pages import actions, console, customer, desk, session
from makegood.api.pages.web import HERE, make_web, page
from makegood.settings import Settings

ROUTERS = (session.router, console.router, actions.router, desk.router, customer.router)


def upload_limits(settings: Settings) -> list[Larger]:
    """The forms that carry a receipt file may be as large as the API's upload route."""
    return [
        Larger(
            "POST",
            re.compile(pattern),
            settings.max_receipt_bytes + 64 * 1024,  # the file and the form's other fields
            "MAKEGOOD_MAX_RECEIPT_BYTES",
            120.0,
        )
        for pattern in (r"/console/cases/[^/]+/claim", r"/c/[^/]+/receipt")
    ]


def install(app: FastAPI, settings: Settings) -> None:
    app.state.web = make_web(settings)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for router in ROUTERS:
        app.include_router(router)

    @app.get("/", include_in_schema=False)
    async def home() -> Response:
        return RedirectResponse("/console", status.HTTP_303_SEE_OTHER)

    @app.exception_handler(session.SignInNeeded)
    async def _sign_in(request: Request, err: session.SignInNeeded) -> Response:
        return session.sign_in_redirect(request, err)

    @app.exception_handler(session.FormRefused)
    async def _stale_form(request: Request, _: session.FormRefused) -> Response:
        reason = "This form had expired or did not come from this console: nothing was done. "
        reason += "Go back, reload the page and try again."
        context = {"session": session.current(request), "reason": reason}
        return page(request, "refused.html", context, status.HTTP_403_FORBIDDEN)
