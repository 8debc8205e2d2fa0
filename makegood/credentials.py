"""Credentials: API tokens kept as SHA-256 hashes, fresh tokens and secrets, and the public
development credentials that only loopback may use (makegood.secure refuses them elsewhere).

A token is a long random string (`new_token`: 256 bits), so a plain SHA-256 of it cannot be
reversed or brute-forced; slow password hashes (argon2, bcrypt) exist for guessable passwords
and would cost every request their work factor for nothing. The configuration holds only
`sha256:<hex>` -> `role:id`; a presented token is hashed and compared with every entry in
constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from makegood.domain import roles
from makegood.domain.actions import Actor

HASH_PREFIX = "sha256:"
_HASHED = re.compile(r"sha256:[0-9a-fA-F]{64}")
_BASE64 = re.compile(r"[A-Za-z0-9+/]*")
WEBHOOK_SECRET_PREFIX = "whsec_"
MIN_WEBHOOK_SECRET_BYTES = 24  # the Standard Webhooks recommendation

# The README documents these so that `make run` works out of the box: they are public, and
# makegood.secure accepts them only when every listener is on loopback and no provider is real.
DEV_TOKENS = {
    "dev-agent-token": "agent:dev-agent",
    "dev-manager-token": "manager:dev-manager",
    "dev-ops-lead-token": "ops_lead:dev-ops-lead",
    "dev-auditor-token": "auditor:dev-auditor",
}
DEV_TELEPHONY_WEBHOOK_SECRET = "whsec_bWFrZWdvb2QtbG9jYWwtdGVsZXBob255LXNlY3JldA=="
DEV_PAYMENTS_WEBHOOK_SECRET = "whsec_bWFrZWdvb2QtbG9jYWwtcGF5bWVudHMtc2VjcmV0MA=="
DEV_SMS_WEBHOOK_SECRET = "whsec_bWFrZWdvb2QtbG9jYWwtc21zLXJlcGxpZXMtc2VjcmV0"
DEV_ZENDESK_SECRET = "makegood-local-zendesk-secret"
DEV_PROVIDER_SECRET = "makegood-local-provider-secret"
DEV_WEB_SECRET = "makegood-local-web-secret-for-loopback-only"
MIN_WEB_SECRET = 32  # characters: `makegood token secret` makes 50
# Every secret this repository has published, the retired ones included: none of them may
# guard anything reachable from another machine, whichever setting holds it.
PUBLIC_SECRETS = frozenset(
    {
        DEV_TELEPHONY_WEBHOOK_SECRET,
        DEV_PAYMENTS_WEBHOOK_SECRET,
        DEV_ZENDESK_SECRET,
        DEV_SMS_WEBHOOK_SECRET,
        DEV_PROVIDER_SECRET,
        DEV_WEB_SECRET,
        "whsec_bWFrZWdvb2QtbG9jYWwtZGV2LXNlY3JldC0wMDAwMDA=",  # MAKEGOOD_WEBHOOK_SECRET's
    }
)


def token_hash(token: str) -> str:
    """What the configuration holds for a token: `sha256:` and the hex digest."""
    return HASH_PREFIX + hashlib.sha256(token.encode()).hexdigest()


DEV_TOKEN_TABLE = {token_hash(token): who for token, who in DEV_TOKENS.items()}


def new_token() -> str:
    """A fresh bearer token: 256 random bits, URL-safe."""
    return "mg_" + secrets.token_urlsafe(32)


def new_webhook_secret() -> str:
    """A fresh Standard Webhooks secret (`whsec_` and 32 random bytes in base64)."""
    return WEBHOOK_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def is_public(secret: str) -> bool:
    return any(hmac.compare_digest(secret.encode(), known.encode()) for known in PUBLIC_SECRETS)


def webhook_secret_problem(secret: str) -> str | None:
    """Why this is not a usable Standard Webhooks secret, if it is not (never showing it)."""
    body = secret.removeprefix(WEBHOOK_SECRET_PREFIX).rstrip("=")
    if not _BASE64.fullmatch(body) or len(body) % 4 == 1:
        return f"not a Standard Webhooks secret: expected {WEBHOOK_SECRET_PREFIX} and base64"
    size = len(base64.b64decode(body + "=" * (-len(body) % 4)))
    if size < MIN_WEBHOOK_SECRET_BYTES:
        return (
            f"too short: {size} bytes of key, at least {MIN_WEBHOOK_SECRET_BYTES} are needed "
            "(`makegood token secret` makes one of 32)"
        )
    return None


@dataclass(frozen=True)
class TokenTable:
    """MAKEGOOD_API_TOKENS, checked: the hashes with whom they stand for, and what is wrong."""

    entries: tuple[tuple[bytes, Actor], ...]
    problems: tuple[str, ...]

    @classmethod
    def parse(cls, table: Mapping[str, object]) -> TokenTable:
        """Each `sha256:<hex>` -> `role:id`. Problems name the entry by its role:id (or its
        position) and never repeat a key that may be a token in clear text."""
        entries: list[tuple[bytes, Actor]] = []
        problems: list[str] = []
        for n, (key, who) in enumerate(table.items(), start=1):
            actor = _actor(who)
            named = f"the entry for {actor}" if actor else f"entry {n} of {len(table)}"
            if actor is None:
                problems.append(
                    f'MAKEGOOD_API_TOKENS: {named}: expected "role:id" as its value, '
                    f'e.g. "agent:sam" (roles: {", ".join(roles.TOKEN_ROLES)})'
                )
            elif actor.role not in roles.TOKEN_ROLES:
                problems.append(
                    f"MAKEGOOD_API_TOKENS: API tokens may carry "
                    f"{', '.join(roles.TOKEN_ROLES)}, not {actor}"
                )
            if _HASHED.fullmatch(key):
                if actor is not None:
                    entries.append((bytes.fromhex(key.removeprefix(HASH_PREFIX)), actor))
            elif key.startswith(HASH_PREFIX):
                problems.append(
                    f"MAKEGOOD_API_TOKENS: {named}: the key must be {HASH_PREFIX} and 64 hex "
                    "digits (a SHA-256)"
                )
            else:
                problems.append(
                    f"MAKEGOOD_API_TOKENS: {named}: the token is in clear text; the "
                    "configuration keeps only its SHA-256, as "
                    f'"{HASH_PREFIX}<hex>": print it with `printf %s "$TOKEN" | makegood '
                    "token hash` (or `| sha256sum`), or make a fresh token with "
                    "`makegood token new ROLE:ID`"
                )
        return cls(tuple(entries), tuple(problems))

    def actor(self, token: str) -> Actor | None:
        """Whom the token stands for: its hash against every entry, in constant time each."""
        digest = hashlib.sha256(token.encode()).digest()
        found = None
        for known, actor in self.entries:
            if hmac.compare_digest(known, digest):
                found = actor
        return found

    def actor_by_hash(self, digest: bytes) -> Actor | None:
        """Whom a token's SHA-256 stands for (a console session keeps only the hash): in
        constant time each, so a token removed from the table ends its sessions too."""
        found = None
        for known, actor in self.entries:
            if hmac.compare_digest(known, digest):
                found = actor
        return found

    def dev_actors(self) -> list[Actor]:
        """Who the README's public dev tokens stand for in this table, if it holds any."""
        dev = {bytes.fromhex(h.removeprefix(HASH_PREFIX)) for h in DEV_TOKEN_TABLE}
        return [actor for known, actor in self.entries if known in dev]


def _actor(who: object) -> Actor | None:
    if not isinstance(who, str):
        return None
    try:
        return Actor.parse(who)
    except ValueError:
        return None
