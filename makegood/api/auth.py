"""Who may call the API: role-bearing tokens for people and services, signatures for machines."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from makegood.credentials import TokenTable
from makegood.domain import roles
from makegood.domain.actions import Actor


@dataclass(frozen=True)
class Caller:
    actor: Actor

    @property
    def role(self) -> str:
        return self.actor.role


class Tokens:
    """MAKEGOOD_API_TOKENS: SHA-256 hashes of the tokens, never the tokens themselves."""

    def __init__(self, table: Mapping[str, object]) -> None:
        self.table = TokenTable.parse(table)
        if self.table.problems:  # the processes refuse these at start-up (makegood.secure)
            raise ValueError("; ".join(self.table.problems))

    def caller(self, token: str) -> Caller | None:
        actor = self.table.actor(token)
        return Caller(actor) if actor else None


_bearer = HTTPBearer(auto_error=False, description="a token issued to an agent, manager or auditor")


def caller(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Caller:
    if credentials is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "a bearer token is required",
            headers={"WWW-Authenticate": "Bearer"},
        )
    found: Caller | None = request.app.state.tokens.caller(credentials.credentials)
    if found is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "unknown token", headers={"WWW-Authenticate": "Bearer"}
        )
    return found


class Allowed:
    """A route's guard: the caller's role must be allowed `action` by the role table
    (`makegood.domain.roles`), else 403 with the table's reason."""

    def __init__(self, action: str) -> None:
        self.roles = roles.allowed(action)  # an action the table does not know fails here
        self.action = action

    def __call__(self, who: Annotated[Caller, Depends(caller)]) -> Caller:
        reason = roles.refusal(who.actor, self.action)
        if reason is not None:
            raise HTTPException(status.HTTP_403_FORBIDDEN, reason)
        return who

    def __repr__(self) -> str:
        return f"Allowed({self.action!r})"


def verify_standard_webhook(
    secret: SecretStr, tolerance_s: int, body: bytes, headers: dict[str, str]
) -> tuple[str, float]:
    """Standard Webhooks: HMAC-SHA256 over id.timestamp.body, within the tolerance (the
    library's own is 5 minutes; MAKEGOOD_WEBHOOK_TOLERANCE_S may only narrow it).

    Returns the delivery id and its signed timestamp; raises 401 for a bad signature.
    """
    try:
        Webhook(secret.get_secret_value()).verify(body, headers, json_parse=False)
    except (WebhookVerificationError, ValueError) as err:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, f"webhook signature rejected: {err}"
        ) from None
    signed_at = float(headers["webhook-timestamp"])  # the library has parsed it already
    if abs(time.time() - signed_at) > tolerance_s:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "webhook signature rejected: timestamp outside the tolerance: stale or replayed",
        )
    return headers["webhook-id"], signed_at


def zendesk_signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def verify_zendesk(
    secret: SecretStr, tolerance_s: int, body: bytes, headers: dict[str, str]
) -> tuple[str, float]:
    """Zendesk's own scheme: base64 HMAC-SHA256 over timestamp + body, in two headers.

    Returns the delivery's key (its signature, unique to its timestamp and body) and its
    signed timestamp; raises 401 for a missing, stale or wrong signature.
    """
    signature = headers.get("x-zendesk-webhook-signature")
    stamp = headers.get("x-zendesk-webhook-signature-timestamp")
    if not signature or not stamp:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Zendesk signature headers missing")
    try:
        sent = _parse_zendesk_time(stamp)
    except ValueError:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, f"bad signature timestamp {stamp!r}"
        ) from None
    if abs(time.time() - sent) > tolerance_s:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "signature timestamp outside the tolerance: stale or replayed",
        )
    expected = zendesk_signature(secret.get_secret_value(), stamp, body)
    # As bytes: compare_digest refuses str with non-ASCII characters, which a header may carry.
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Zendesk signature does not match")
    return signature, sent


def _parse_zendesk_time(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
