"""Signed, expiring tokens: the console's session cookie and CSRF tokens, and the customer's
single-case links.

A token is `<base64url of compact JSON claims>.<base64url of HMAC-SHA256>`. Each use has a key
of its own, derived from one secret (MAKEGOOD_WEB_SECRET) and the use's name, so a session
cookie can never pass for a customer link or the other way round. Pure: the caller says what
time it is.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Final

MAX_TOKEN: Final = 2048  # longer is not one of ours: refused before any work


class BadToken(ValueError):
    """Forged, altered, malformed or expired; the message says which, never the key."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """Signs and reads the tokens of one use (`purpose`) under one secret."""

    def __init__(self, secret: str, purpose: str) -> None:
        self._key = hmac.new(secret.encode(), f"makegood/{purpose}".encode(), "sha256").digest()
        self.purpose = purpose

    def _mac(self, body: str) -> bytes:
        return hmac.new(self._key, body.encode(), hashlib.sha256).digest()

    def sign(self, claims: Mapping[str, str | int], *, expires: int) -> str:
        """A token for `claims`, good until the Unix time `expires`."""
        body = _b64(json.dumps({**claims, "exp": expires}, separators=(",", ":")).encode())
        return f"{body}.{_b64(self._mac(body))}"

    def read(self, token: str, *, now: float) -> dict[str, str | int]:
        """The claims of a token this signer made and that has not expired; else BadToken."""
        if len(token) > MAX_TOKEN or token.count(".") != 1:
            raise BadToken("not a valid link")
        body, _, mac = token.partition(".")
        try:
            given = _unb64(mac)
        except (binascii.Error, ValueError):
            raise BadToken("not a valid link") from None
        if not hmac.compare_digest(given, self._mac(body)):
            raise BadToken("not a valid link")
        try:
            claims = json.loads(_unb64(body))
        except (binascii.Error, ValueError):
            raise BadToken("not a valid link") from None
        if not isinstance(claims, dict) or not isinstance(claims.get("exp"), int):
            raise BadToken("not a valid link")
        if now >= claims["exp"]:
            raise BadToken("expired")
        return claims
