"""What the pages share: the templates, the signers, and the security headers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from makegood.domain import plain
from makegood.domain.links import Links
from makegood.domain.signed import Signer
from makegood.domain.trend_rows import figure
from makegood.settings import Settings

HERE: Final = Path(__file__).parent
HTMX: Final = "htmx-2.0.11.min.js"
# No inline script, no other origin, no framing; forms post only here. The pages use none of
# what this forbids, so an injected script or a hostile frame finds nothing to run with.
CSP: Final = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


@dataclass(frozen=True)
class Web:
    templates: Jinja2Templates
    session: Signer
    csrf: Signer
    signin: Signer
    links: Links
    secure_cookies: bool


def _when(at: datetime | None) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if at else "-"


def _day(at: datetime | None) -> str:
    return at.astimezone(UTC).strftime("%d %B %Y, %H:%M UTC") if at else "-"


def make_web(settings: Settings) -> Web:
    templates = Jinja2Templates(directory=HERE / "templates")
    env = templates.env
    env.globals["htmx"] = HTMX
    env.filters["when"] = _when
    env.filters["day"] = _day
    env.filters["choice"] = plain.choice
    env.filters["seconds"] = lambda v: figure(v, "s")
    env.filters["percent"] = lambda v: "-" if v is None else f"{v:.0%}"
    secret = settings.web_secret.get_secret_value()
    return Web(
        templates=templates,
        session=Signer(secret, "session"),
        csrf=Signer(secret, "csrf"),
        signin=Signer(secret, "sign-in"),
        links=settings.links(),
        secure_cookies=settings.base_url.startswith("https://"),
    )


def web(request: Request) -> Web:
    return request.app.state.web  # type: ignore[no-any-return]


def page(
    request: Request,
    template: str,
    context: dict[str, Any],
    status_code: int = 200,
    *,
    private: bool = False,
) -> HTMLResponse:
    """A rendered page with the security headers; `private`: a customer's page, whose address
    is a credential (no referrer leaves it, nothing caches it)."""
    response = web(request).templates.TemplateResponse(
        request, template, context, status_code=status_code
    )
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer" if private else "same-origin"
    return response
