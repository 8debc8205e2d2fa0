"""Pseudonyms: what search attributes hold instead of a customer id, serial number or
reservation, so that visibility can match cases without showing (or leaking) the ids.

A pseudonym is an HMAC-SHA256 of the id under a secret key (MAKEGOOD_PSEUDONYM_KEY): equal
ids match, and nobody without the key can test a guessed id against the index. Cases opened
before the key existed carry the older, unkeyed SHA-256 form (`legacy`), which anyone could
recompute from a guessed id; lookups search both forms so those cases are still found.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Final, Literal

What = Literal["customer", "asset", "contact"]
LENGTH: Final = 32  # hex characters: 128 bits, plenty to keep ids apart, short to index


def legacy(what: What, value: str) -> str:
    """The unkeyed form of cases opened before pseudonyms were keyed: only ever searched."""
    return hashlib.sha256(f"makegood:{what}:{value}".encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Pseudonyms:
    """Keyed pseudonyms; the key never appears in a repr or a log line."""

    key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.key) < 32:
            raise ValueError("a pseudonym key needs at least 32 bytes")

    def of(self, what: What, value: str) -> str:
        mac = hmac.new(self.key, f"makegood:{what}:{value}".encode(), hashlib.sha256)
        return mac.hexdigest()[:LENGTH]

    def customer(self, customer_id: str) -> str:
        return self.of("customer", customer_id)

    def asset(self, asset: str) -> str:
        return self.of("asset", asset)

    def contact(self, phone: str) -> str:
        """A phone number, as the case index keeps whom an SMS question waits on."""
        return self.of("contact", phone)

    def forms(self, what: What, value: str) -> tuple[str, str]:
        """Every form a case about this id may carry: the keyed one first, then the legacy."""
        return self.of(what, value), legacy(what, value)
