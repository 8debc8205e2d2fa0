"""Receipts as documents: what a receipt file may be, where it is kept, and what the receipt
index says about a claim (the same receipt claimed before, a near duplicate).

A receipt is stored content-addressed: its key in the receipt store is `sha256/<aa>/<hex>`, so
the same file uploaded twice is one object, and a claim names its receipt by the digest alone.
The index (`makegood.adapters.receipt_index`) keeps each claim under the customer's keyed
pseudonym, never a name or an id in clear, and answers which earlier claims share its receipt
(in this case or another case of the same customer) and which look like it (same amount and
description within a day).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Final, Literal

from pydantic import BaseModel, Field, StringConstraints

from makegood.domain.money import Money

SHA256_PATTERN: Final = r"^[0-9a-f]{64}$"
Sha256 = Annotated[
    str,
    StringConstraints(pattern=SHA256_PATTERN),
    Field(description="the receipt file's SHA-256, 64 lower-case hex digits, as uploaded"),
]
NEAR_WINDOW: Final = timedelta(days=1)
"""Claims of one customer with the same amount and description this close are near duplicates."""

# What a receipt file may be, told by its first bytes (never by its name or declared type).
ACCEPTED: Final = "PDF, PNG, JPEG, WebP or HEIC"
_HEIF_BRANDS: Final = (b"heic", b"heix", b"hevc", b"hevx", b"mif1", b"msf1")


def sniff(data: bytes) -> str | None:
    """The media type of a receipt file from its magic bytes, or None if it is none we take."""
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if len(data) >= 12 and data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        return "image/heic"
    return None


def blob_key(digest: str) -> str:
    """Where a receipt lives in the receipt store: `sha256/<first two hex>/<hex>`."""
    return f"sha256/{digest[:2]}/{digest}"


class ClaimRegistration(BaseModel):
    """What a case tells the receipt index about a claim (the `register_claim` activity).

    `customer` is the case's keyed customer pseudonym (its MakegoodCustomer search attribute).
    Registering the same (case, claim) again answers the same and records nothing new, so a
    retried activity never finds its own claim as an earlier one.
    """

    case_id: str
    claim_id: str
    customer: str
    receipt_sha256: Sha256 | None = None
    amount: Money
    description: str
    at: datetime
    duplicates: Literal["refuse", "hold"] = Field(
        description="the playbook's duplicate_receipt: a refused claim is not recorded"
    )


class EarlierClaim(BaseModel):
    """A claim the index knew before this one: where it was made, and when."""

    case_id: str
    claim_id: str
    amount: Money
    at: datetime

    def named(self) -> str:
        return f"{self.claim_id} in case {self.case_id} on {self.at:%Y-%m-%d %H:%M} UTC"


class ReceiptFindings(BaseModel):
    """What the index answers: every bool is True when there is nothing to say."""

    uploaded: bool = Field(
        default=True, description="the receipt named is in the receipt store (or none is named)"
    )
    registered: bool = Field(default=True, description="the claim is now in the index")
    same_receipt: list[EarlierClaim] = []
    near: list[EarlierClaim] = []


class ClaimCheck(BaseModel):
    """What the receipt index found about one accepted claim, kept in the case's status."""

    claim_id: str
    receipt_sha256: str | None = None
    held: bool = Field(
        default=False, description="paid only if a manager approves it (a receipt claimed before)"
    )
    same_receipt: list[EarlierClaim] = []
    near: list[EarlierClaim] = []

    @property
    def step(self) -> str:
        """The compensation item this claim becomes."""
        return f"reimburse:{self.claim_id}"

    def notes(self) -> list[str]:
        """What an approver must know about this claim, one line per finding."""
        lines = [f"claim {self.claim_id}: {already_claimed(c)}" for c in self.same_receipt[:1]]
        lines += [f"claim {self.claim_id}: {near_duplicate(c)}" for c in self.near]
        return lines


def already_claimed(earlier: EarlierClaim) -> str:
    return f"receipt already claimed as {earlier.named()}"


def near_duplicate(earlier: EarlierClaim) -> str:
    return (
        f"possible duplicate of {earlier.named()} (same amount and description within "
        f"{NEAR_WINDOW.days} day)"
    )
