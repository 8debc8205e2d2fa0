"""The codec endpoint: the Temporal UI (and `temporal --codec-endpoint`) decrypts payloads here.

`POST /codec/decode` and `/codec/encode` take and return `{"payloads": [...]}`, the protobuf
JSON of temporal.api.common.v1.Payloads (the codec server protocol), through the same codec
as every Makegood process. Callers authenticate with the API's bearer tokens; the role table
says who may decode (managers, auditors) and encode (managers).

A browser cannot add our bearer token to the UI's requests (the UI passes only its own login's
token, and only to an https endpoint), so a person signs in once at `GET /codec/login` with
their token: an HttpOnly, SameSite=Strict cookie scoped to /codec carries it, and the UI sends
it when its codec setting "include cross-origin credentials" is on. CORS admits the UI's
origin alone (MAKEGOOD_UI_ORIGIN), credentials included.
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Final
from urllib.parse import parse_qs

import structlog
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from google.protobuf import json_format
from pydantic import BaseModel, ConfigDict, Field
from temporalio.api.common.v1 import Payload

from makegood.api.auth import Allowed, Caller
from makegood.api.deps import Temporal
from makegood.api.responses import BAD_BODY, TOKEN, UNREADABLE, problem, responses
from makegood.domain import roles
from makegood.privacy.codec import PayloadKeyError, cipher_of

log = structlog.get_logger("makegood.api.codec")
router = APIRouter(prefix="/codec", tags=["codec"])
COOKIE: Final = "makegood_codec"
SESSION_S: Final = 8 * 3600
_bearer = HTTPBearer(auto_error=False, description="a manager's or an auditor's token")


class WirePayload(BaseModel):
    """One payload as protobuf JSON: metadata values and data are base64."""

    model_config = ConfigDict(extra="ignore")
    metadata: dict[str, str] = Field(default_factory=dict)
    data: str = ""


class WirePayloads(BaseModel):
    payloads: list[WirePayload] = Field(default_factory=list)


def codec_caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """The bearer token's owner, or the signed-in person's (the /codec cookie)."""
    token = credentials.credentials if credentials else request.cookies.get(COOKIE)
    if not token:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "a bearer token is required (or sign in at /codec/login)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    found: Caller | None = request.app.state.tokens.caller(token)
    if found is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "unknown token", headers={"WWW-Authenticate": "Bearer"}
        )
    return found


class CodecAllowed(Allowed):
    """The role-table guard, for a caller known by bearer token or sign-in cookie."""

    def __call__(self, who: Annotated[Caller, Depends(codec_caller)]) -> Caller:
        return super().__call__(who)


MayDecode = Annotated[Caller, Depends(CodecAllowed(roles.DECODE))]
MayEncode = Annotated[Caller, Depends(CodecAllowed(roles.ENCODE))]


def _payloads(body: WirePayloads) -> list[Payload]:
    try:
        return [json_format.ParseDict(p.model_dump(), Payload()) for p in body.payloads]
    except json_format.ParseError as err:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"not a payload: {err}"
        ) from None


def _wire(payloads: list[Payload]) -> dict[str, Any]:
    return {"payloads": [json_format.MessageToDict(p) for p in payloads]}


@router.post(
    "/decode",
    responses=responses(
        {
            400: problem(
                "a payload this codec cannot decrypt (an unknown key, say), or a body that "
                "cannot be read as JSON at all"
            )
        },
        TOKEN,
        BAD_BODY,
    ),
)
async def decode(body: WirePayloads, who: MayDecode, client: Temporal) -> dict[str, Any]:
    """Payloads as they were before encryption; unencrypted ones as they are."""
    try:
        decoded = await cipher_of(client).decode(_payloads(body))
    except PayloadKeyError as err:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(err)) from None
    log.info("payloads_decoded", by=str(who.actor), count=len(decoded))
    return _wire(decoded)


@router.post("/encode", responses=responses(TOKEN, UNREADABLE, BAD_BODY))
async def encode(body: WirePayloads, who: MayEncode, client: Temporal) -> dict[str, Any]:
    """Payloads encrypted with the active key, as a worker would store them."""
    encoded = await cipher_of(client).encode(_payloads(body))
    log.info("payloads_encoded", by=str(who.actor), count=len(encoded))
    return _wire(encoded)


def _page(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"text/html": {"schema": {"type": "string"}}}}


_LOGIN = """<!doctype html><html><head><meta charset="utf-8"><title>Makegood codec</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto">
<h1>Decrypt payloads in the Temporal UI</h1><p>{message}</p>
<form method="post" action="/codec/login">
<label>Your Makegood API token (a manager's or an auditor's)<br>
<input type="password" name="token" size="40" autocomplete="off" required></label>
<button type="submit">Sign in</button></form>
<p>Then, in the Temporal UI at <a href="{origin}">{origin}</a>, open the codec server
settings, set the endpoint to <code>{endpoint}</code> and turn on "include cross-origin
credentials".</p></body></html>"""


def _login_page(request: Request, message: str, code: int = 200) -> HTMLResponse:
    origin = request.app.state.settings.ui_origin
    endpoint = str(request.url_for("decode")).removesuffix("/decode")
    page = _LOGIN.format(
        message=html.escape(message), origin=html.escape(origin), endpoint=html.escape(endpoint)
    )
    return HTMLResponse(page, code)


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request) -> HTMLResponse:
    """A form to sign in with a token, for the Temporal UI's codec requests."""
    return _login_page(request, "Sign in once; the sign-in lasts 8 hours.")


@router.post(
    "/login",
    response_class=HTMLResponse,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "properties": {"token": {"type": "string"}},
                        "required": ["token"],
                    }
                }
            },
        }
    },
    responses=responses(
        {
            401: _page("unknown token; nothing was stored"),
            403: _page("the token's role may not decode"),
        },
        {
            413: {  # from the body limit, which answers JSON whatever the route's class
                "description": BAD_BODY[413]["description"],
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/ProblemReport"}}
                },
            }
        },
    ),
)
async def login(request: Request) -> HTMLResponse:
    """Sign in: a token that may decode becomes an HttpOnly cookie for /codec."""
    form = parse_qs((await request.body()).decode(errors="replace"))
    token = (form.get("token") or [""])[0].strip()
    found: Caller | None = request.app.state.tokens.caller(token) if token else None
    if found is None:
        return _login_page(request, "Unknown token; nothing was stored.", 401)
    if reason := roles.refusal(found.actor, roles.DECODE):
        return _login_page(request, f"Not signed in: {reason}.", 403)
    response = _login_page(request, f"Signed in as {found.actor} for {SESSION_S // 3600} hours.")
    response.set_cookie(
        COOKIE,
        token,
        max_age=SESSION_S,
        path="/codec",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    log.info("codec_sign_in", by=str(found.actor))
    return response


def allow_ui_origin(app: FastAPI, origin: str) -> None:
    """CORS for /codec alone, and for the UI's origin alone, with credentials."""

    @app.middleware("http")
    async def _codec_cors(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if not request.url.path.startswith(f"{router.prefix}/"):
            return await call_next(request)
        allowed = request.headers.get("origin") == origin
        headers = {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Credentials": "true",
            "Vary": "Origin",
        }
        if request.method == "OPTIONS" and "access-control-request-method" in request.headers:
            if not allowed:
                return JSONResponse(
                    {"detail": f"origin not allowed: only {origin} (MAKEGOOD_UI_ORIGIN)"},
                    status.HTTP_403_FORBIDDEN,
                    headers={"Vary": "Origin"},
                )
            return Response(
                status_code=status.HTTP_204_NO_CONTENT,
                headers={
                    **headers,
                    "Access-Control-Allow-Methods": "POST",
                    "Access-Control-Allow-Headers": "authorization, content-type, x-namespace",
                    "Access-Control-Max-Age": "600",
                },
            )
        response = await call_next(request)
        if allowed:
            response.headers.update(headers)
        return response
