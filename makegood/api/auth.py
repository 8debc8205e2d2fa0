"""Who may call the API: role-bearing tokens for people and services, signatures for machines."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections import OrderedDict
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


class ReplayGuard:
    """Delivery ids seen within the signature tolerance: a replayed delivery is refused."""

    def __init__(self, window_s: int, limit: int = 100_000) -> None:
        self.window, self.limit = window_s, limit
        self.seen: OrderedDict[str, float] = OrderedDict()

    def first_time(self, delivery: str) -> bool:
        now = time.monotonic()
        while self.seen and next(iter(self.seen.values())) < now - self.window:
            self.seen.popitem(last=False)
        if delivery in self.seen:
            return False
        self.seen[delivery] = now
        if len(self.seen) > self.limit:
            self.seen.popitem(last=False)
        return True


def verify_standard_webhook(
    secret: SecretStr, guard: ReplayGuard, body: bytes, headers: dict[str, str]
) -> str:
    """Standard Webhooks: HMAC-SHA256 over id.timestamp.body, 5 minutes' tolerance.

    Returns the delivery id; raises 401 for a bad signature, 409 for a replay.
    """
    try:
        Webhook(secret.get_secret_value()).verify(body, headers, json_parse=False)
    except (WebhookVerificationError, ValueError) as err:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, f"webhook signature rejected: {err}"
        ) from None
    delivery = headers.get("webhook-id", "")
    if not guard.first_time(f"std:{delivery}"):
        raise HTTPException(status.HTTP_409_CONFLICT, f"delivery {delivery} was already received")
    return delivery


def zendesk_signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def verify_zendesk(
    secret: SecretStr, guard: ReplayGuard, tolerance_s: int, body: bytes, headers: dict[str, str]
) -> None:
    """Zendesk's own scheme: base64 HMAC-SHA256 over timestamp + body, in two headers."""
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
    if not hmac.compare_digest(expected, signature):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Zendesk signature does not match")
    if not guard.first_time(f"zd:{signature}"):
        raise HTTPException(status.HTTP_409_CONFLICT, "this delivery was already received")


def _parse_zendesk_time(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
