"""What the timeline says of a product action or a receipt check, from the call's request and
result: one line of text each."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from makegood.domain import calls
from makegood.domain.receipts import (
    ClaimRegistration,
    ReceiptFindings,
    already_claimed,
    near_duplicate,
)

# Product actions with nothing more to them than a line of text, from request and result.
PRODUCT: dict[str, Callable[[Any, Any], str]] = {
    calls.LOCATE_VEHICLE.name: lambda req, res: f"sounded the horn of {req.vehicle}",
    calls.CREATE_RETURN.name: lambda req, res: f"return label for {req.sku} on {req.order}",
    calls.PLACE_SUBSTITUTE.name: lambda req, res: (
        f"substitute {req.sku} ordered, {req.waived} waived"
    ),
    calls.SHIP_ITEM.name: lambda req, res: f"shipped {req.sku} for {req.order}",
    calls.GRANT_PERK.name: lambda req, res: f"perk {req.perk} granted",
    calls.REMAKE_ORDER.name: lambda req, res: f"remade {req.item} for {req.order}",
    calls.BOOK_REPAIR.name: lambda req, res: f"repair of {req.item} {req.asset} booked",
    calls.REPLACE_ITEM.name: lambda req, res: f"replacement {res.sku} shipped for {req.item}",
}


def receipt_check(req: ClaimRegistration, found: ReceiptFindings) -> str:
    """What the receipt index said about a claim, as the approver was told."""
    head = f"receipt of claim {req.claim_id} checked"
    if req.receipt_sha256:
        head += f" (sha256 {req.receipt_sha256[:12]}...)"
    if not found.uploaded:
        return f"{head}: never uploaded, claim refused"
    said = [already_claimed(c) for c in found.same_receipt[:1]]
    said += [near_duplicate(c) for c in found.near]
    if found.same_receipt and not found.registered:
        said.append("claim refused")
    elif found.same_receipt:
        said.append("held for a manager")
    return f"{head}: " + ("; ".join(said) if said else "no earlier claim of it")
