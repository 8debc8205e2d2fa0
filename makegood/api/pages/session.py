"""Signing in to the console: a token (the same one the CLI uses) becomes a session cookie.

The cookie is signed (MAKEGOOD_WEB_SECRET), HttpOnly, SameSite=Lax, Secure when the API is
reached over HTTPS, and good for 12 hours. It holds the token's SHA-256 (never the token) and
a random nonce: each request finds who it stands for in MAKEGOOD_API_TOKENS again, so a token
removed from the table ends its sessions. Every form carries a CSRF token made from the nonce
(the sign-in form one made from a cookie of its own), and a POST without the right one
changes nothing.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Annotated, Final
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request, status
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from makegood.api.pages.web import page, web
from makegood.domain import roles
from makegood.domain.actions import Actor
from makegood.domain.signed import BadToken

COOKIE: Final = "makegood_session"
SIGNIN_COOKIE: Final = "makegood_signin"
LIFETIME_S: Final = 12 * 3600
SIGNIN_S: Final = 3600
HOME: Final = "/console"

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class Session:
    actor: Actor
    csrf: str
    nonce: str

    def may(self, action: str) -> bool:
        return roles.may(self.actor.role, action)


class SignInNeeded(Exception):
    """No valid session: a page redirects to the sign-in form, a form post says why."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


class FormRefused(Exception):
    """A console form without a valid CSRF token: nothing was done."""


def _safe_next(path: str | None) -> str:
    """Where to go after signing in: one of our console pages, never another site."""
    if path and path.startswith(HOME) and not path.startswith("//") and "\\" not in path:
        return path
    return HOME


def current(request: Request) -> Session | None:
    """The signed-in person, if the cookie is ours, unexpired, and its token still valid."""
    raw = request.cookies.get(COOKIE)
    if not raw:
        return None
    w = web(request)
    try:
        claims = w.session.read(raw, now=time.time())
        digest = bytes.fromhex(str(claims["h"]))
    except (BadToken, KeyError, ValueError):
        return None
    actor = request.app.state.tokens.table.actor_by_hash(digest)
    if actor is None:
        return None
    nonce = str(claims.get("n", ""))
    csrf = w.csrf.sign({"n": nonce}, expires=int(claims["exp"]))
    return Session(actor, csrf, nonce)


def staff(request: Request) -> Session:
    found = current(request)
    if found is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInNeeded(target)
    return found


Staff = Annotated[Session, Depends(staff)]


async def checked_form(request: Request, session: Session) -> FormData:
    """The posted form, if its CSRF token is this session's; else FormRefused."""
    form = await request.form()
    token = form.get("csrf")
    try:
        claims = web(request).csrf.read(str(token or ""), now=time.time())
    except BadToken:
        raise FormRefused() from None
    if not secrets.compare_digest(str(claims.get("n", "")), session.nonce):
        raise FormRefused()
    return form


def _cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=web(request).secure_cookies,
        path="/",
    )


def sign_in_page(request: Request, next_path: str, error: str | None = None) -> Response:
    nonce = secrets.token_urlsafe(16)
    w = web(request)
    csrf = w.signin.sign({"n": nonce}, expires=int(time.time()) + SIGNIN_S)
    code = status.HTTP_401_UNAUTHORIZED if error else status.HTTP_200_OK
    response = page(
        request,
        "sign_in.html",
        {"csrf": csrf, "next": _safe_next(next_path), "error": error, "session": None},
        code,
    )
    _cookie(request, response, SIGNIN_COOKIE, nonce, SIGNIN_S)
    return response


@router.get("/console/sign-in")
async def sign_in_form(request: Request, next: str = HOME) -> Response:
    return sign_in_page(request, next)


@router.post("/console/sign-in")
async def sign_in(
    request: Request,
    token: Annotated[str, Form(max_length=512)] = "",
    csrf: Annotated[str, Form(max_length=2048)] = "",
    next: Annotated[str, Form(max_length=512)] = HOME,
) -> Response:
    w = web(request)
    try:
        claims = w.signin.read(csrf, now=time.time())
        fresh = secrets.compare_digest(
            str(claims.get("n", "")), request.cookies.get(SIGNIN_COOKIE, "")
        )
    except BadToken:
        fresh = False
    if not fresh:
        return sign_in_page(request, next, "The sign-in form had expired: please try again.")
    actor = request.app.state.tokens.table.actor(token.strip())
    if actor is None:
        return sign_in_page(request, next, "That token is not known here. Nothing was signed in.")
    digest = hashlib.sha256(token.strip().encode()).hexdigest()
    cookie = w.session.sign(
        {"h": digest, "n": secrets.token_urlsafe(16)}, expires=int(time.time()) + LIFETIME_S
    )
    response = RedirectResponse(_safe_next(next), status.HTTP_303_SEE_OTHER)
    _cookie(request, response, COOKIE, cookie, LIFETIME_S)
    response.delete_cookie(SIGNIN_COOKIE, path="/")
    return response


@router.post("/console/sign-out")
async def sign_out(request: Request, session: Staff) -> Response:
    await checked_form(request, session)
    response = RedirectResponse("/console/sign-in", status.HTTP_303_SEE_OTHER)
    response.delete_cookie(COOKIE, path="/")
    return response


def sign_in_redirect(request: Request, err: SignInNeeded) -> Response:
    target = f"/console/sign-in?next={quote(_safe_next(err.next_path), safe='/')}"
    if request.method == "GET":
        return RedirectResponse(target, status.HTTP_303_SEE_OTHER)
    return sign_in_page(request, err.next_path, "Your session has ended: please sign in again.")
