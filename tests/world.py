"""The world the fakes' providers see, per test: the fleet, stock, owners, whether a horn
sounds, earlier cases for the history lookup, and what each product action did to them."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from makegood.domain.case import CaseOutcome, RelatedCase, RelatedCases
from makegood.domain.money import Money
from makegood.domain.provider import (
    LocateRequest,
    OwnershipRequest,
    QuoteRequest,
    RebookRequest,
    RelatedQuery,
    ReleaseRequest,
    ReplaceRequest,
    ShipRequest,
    StockRequest,
    SubstituteRequest,
)


class Refused(Exception):
    """A provider's permanent "no" (out of stock, unknown booking): nothing was done."""


# ------------------------------------------------------------------ the world the providers see
@dataclass
class Vehicle:
    cls: str
    rank: int
    location: str
    available: bool = True


@dataclass
class Item:
    quantity: int
    price: Decimal
    family: str | None = None
    rank: int = 1


def _fleet() -> dict[str, Vehicle]:
    return {
        "CAR-1": Vehicle("compact", 1, "Main St 1", available=False),  # booked by R-1001
        "CAR-2": Vehicle("compact", 1, "Main St 1"),
        "CAR-3": Vehicle("premium", 3, "Main St 1"),
        "CAR-4": Vehicle("compact", 1, "Station Rd 9"),
        "CAR-5": Vehicle("standard", 2, "Harbour 4"),
    }


def _stock() -> dict[str, Item]:
    return {
        "SHORTS-BLUE-M": Item(0, Decimal("27.00")),
        "SHORTS-BLUE-L": Item(3, Decimal("27.00")),
        "SHORTS-NAVY-M": Item(5, Decimal("34.00")),
        "LAPTOP-14": Item(0, Decimal("999.00"), "laptop", 1),
        "LAPTOP-15": Item(3, Decimal("1199.00"), "laptop", 2),
        "EREADER-7": Item(5, Decimal("129.99"), "ereader", 1),
        "EREADER-8": Item(5, Decimal("179.99"), "ereader", 2),
    }


@dataclass
class World:
    """Per-test data: what the product and the case index look like. Defaults: the seed."""

    vehicles: dict[str, Vehicle] = field(default_factory=_fleet)
    bookings: dict[str, tuple[str, str]] = field(  # booking id -> (vehicle, status)
        default_factory=lambda: {"R-1001": ("CAR-1", "active")}
    )
    owners: dict[tuple[str, str], str] = field(  # (booking/asset/order, ref) -> customer
        default_factory=lambda: {("booking", "R-1001"): "M-42"}
    )
    silent_horns: set[str] = field(default_factory=set)  # vehicles whose horn cannot sound
    stock: dict[str, Item] = field(default_factory=_stock)
    currency: str = "USD"
    related: list[RelatedCase] = field(default_factory=list)
    history_available: bool = True
    perks: set[tuple[str, str]] = field(default_factory=set)
    outcomes: dict[str, CaseOutcome] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def earlier_case(self, case_id: str, **fields: Any) -> RelatedCase:
        """Put an earlier case of the same customer on file for the history lookup."""
        base: dict[str, Any] = {
            "case_id": case_id,
            "kind": "warranty_fault",
            "reference": "W-77",
            "asset": "SN-77",
            "fault": "screen",
            "summary": "screen flickers",
            "opened_at": datetime(2026, 1, 1, tzinfo=UTC),
            "state": "completed",
            "same_asset": True,
            "same_customer": True,
            "resolution": "resolved",
        }
        related = RelatedCase.model_validate({**base, **fields})
        self.related.append(related)
        return related

    def _item(self, sku: str) -> Item:
        if sku not in self.stock:
            raise Refused(f"unknown SKU {sku!r}")
        return self.stock[sku]

    def _take(self, sku: str) -> None:
        item = self._item(sku)
        if item.quantity <= 0:
            raise Refused(f"{sku} is out of stock")
        item.quantity -= 1

    # ---- what each provider call answers beyond a plain receipt (spec name -> fields).
    # Each checks before it changes anything: a refusal leaves the world as it was.
    def locate_vehicle(self, req: LocateRequest) -> dict[str, Any]:
        if req.vehicle not in self.vehicles:
            raise Refused(f"unknown vehicle {req.vehicle!r}")
        heard = req.vehicle not in self.silent_horns
        return {"honked": heard, "location": self.vehicles[req.vehicle].location}

    def rebook_vehicle(self, req: RebookRequest) -> dict[str, Any]:
        like = self.vehicles[req.like_vehicle]
        fits = [
            (v.location != req.near, v.rank, vid, v)
            for vid, v in self.vehicles.items()
            if v.available
            and vid not in req.exclude
            and (v.rank > like.rank if req.upgrade else v.rank == like.rank)
        ]
        if not fits:
            wanted = "a higher class" if req.upgrade else f"class {like.cls}"
            raise Refused(f"no vehicle of {wanted} available near {req.near}")
        *_, vid, car = min(fits, key=lambda f: f[:3])
        car.available = False
        booking = f"bk-{next(self._ids)}"
        self.bookings[booking] = (vid, "active")
        self.owners["booking", booking] = req.customer_id
        return {
            "booking_id": booking,
            "vehicle": vid,
            "vehicle_class": car.cls,
            "location": car.location,
        }

    def verify_ownership(self, req: OwnershipRequest) -> dict[str, Any]:
        """A booking must be on record as the customer's; an asset or order not on record is
        registered to the first customer who reports it, as the local provider does."""
        if req.kind == "booking" and (req.kind, req.ref) not in self.owners:
            return {"owned": False, "detail": f"no booking {req.ref} on record"}
        owner = self.owners.setdefault((req.kind, req.ref), req.customer_id)
        if owner != req.customer_id:
            detail = f"{req.kind} {req.ref} is registered to another customer"
            return {"owned": False, "detail": detail}
        return {"owned": True, "detail": ""}

    def release_booking(self, req: ReleaseRequest) -> dict[str, Any]:
        if req.booking not in self.bookings:
            raise Refused(f"unknown booking {req.booking!r}")
        vehicle, _ = self.bookings[req.booking]
        self.bookings[req.booking] = (vehicle, "released")
        self.vehicles[vehicle].available = True
        return {"detail": f"booking {req.booking} released"}

    def check_stock(self, req: StockRequest) -> dict[str, Any]:
        item = self._item(req.sku)
        return {
            "available": item.quantity,
            "price": Money(amount=item.price, currency=self.currency),
        }

    def quote_substitute(self, req: QuoteRequest) -> dict[str, Any]:
        original, substitute = self._item(req.original_sku), self._item(req.substitute_sku)
        difference = max(substitute.price - original.price, Decimal(0))
        return {
            "available": substitute.quantity > 0,
            "difference": Money(amount=difference, currency=self.currency),
        }

    def place_substitute(self, req: SubstituteRequest) -> dict[str, Any]:
        self._take(req.sku)
        return {"detail": f"{req.sku} sent, {req.waived} waived"}

    def ship_item(self, req: ShipRequest) -> dict[str, Any]:
        self._take(req.sku)
        return {"detail": f"{req.sku} shipped for order {req.order}"}

    def replace_item(self, req: ReplaceRequest) -> dict[str, Any]:
        model = self._item(req.item)
        if model.family is None:
            raise Refused(f"unknown model {req.item!r}")
        picks = sorted(
            (sku != req.item, item.rank, sku)
            for sku, item in self.stock.items()
            if item.family == model.family and item.rank >= model.rank and item.quantity > 0
        )
        if not picks:
            raise Refused(f"no {model.family} of class {model.rank} or better in stock")
        _, rank, sku = picks[0]
        self._take(sku)
        return {
            "sku": sku,
            "family": model.family,
            "class_rank": rank,
            "same_model": sku == req.item,
        }

    def find_related_cases(self, q: RelatedQuery) -> RelatedCases:
        if not self.history_available:
            return RelatedCases(available=False, note="this Temporal server cannot search cases")
        return RelatedCases(cases=[c for c in self.related if c.case_id != q.case_id])

    def record_outcome(self, outcome: CaseOutcome) -> None:
        self.outcomes[outcome.case_id] = outcome
