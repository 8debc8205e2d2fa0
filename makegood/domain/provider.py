"""What activities ask of providers and what providers answer.

Every request that changes something carries `step`, a logical step name such as
`refund` or `rebook:2`. The activity turns it into the idempotency key
`<workflow id>:<step>`: stable across retries, never the attempt number.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from makegood.domain.money import Money
from makegood.domain.ticket import Channel


class _Request(BaseModel):
    step: str


class MessageRequest(_Request):
    channel: Channel
    to: str
    subject: str
    body: str
    customer_id: str


class MessageReceipt(BaseModel):
    message_id: str
    idempotency_key: str
    channel: Channel
    to: str
    sent_at: datetime


PaymentKind = Literal["refund", "reimbursement", "coupon"]


class PaymentRequest(_Request):
    kind: PaymentKind
    amount: Money
    customer_id: str
    reference: str
    memo: str


class PaymentReceipt(BaseModel):
    payment_id: str
    idempotency_key: str
    kind: PaymentKind
    amount: Money
    created_at: datetime


class LocateRequest(_Request):
    vehicle: str
    booking: str


class LocateResult(BaseModel):
    vehicle: str
    honked: bool
    location: str | None


class RebookRequest(_Request):
    customer_id: str
    replaces: str
    like_vehicle: str
    near: str
    exclude: list[str]
    upgrade: bool


class BookingResult(BaseModel):
    booking_id: str
    vehicle: str
    vehicle_class: str
    location: str


class ReleaseRequest(_Request):
    booking: str


class StockRequest(BaseModel):
    sku: str


class StockResult(BaseModel):
    sku: str
    available: int
    price: Money | None


class ReturnRequest(_Request):
    order: str
    sku: str
    customer_id: str


class ReturnLabel(BaseModel):
    label_id: str
    form_id: str
    prepaid: bool


class QuoteRequest(BaseModel):
    original_sku: str
    substitute_sku: str


class Quote(BaseModel):
    substitute_sku: str
    available: bool
    difference: Money


class SubstituteRequest(_Request):
    order: str
    sku: str
    customer_id: str
    waived: Money


class PerkRequest(_Request):
    customer_id: str
    perk: str


class ShipRequest(_Request):
    order: str
    sku: str
    customer_id: str


class RemakeRequest(_Request):
    order: str
    item: str


class ProductReceipt(BaseModel):
    action_id: str
    idempotency_key: str
    action: str
    detail: str


class RelatedQuery(BaseModel):
    case_id: str
    customer_id: str
    asset: str | None = None
    reference: str


class RepairRequest(_Request):
    asset: str
    item: str
    fault: str
    customer_id: str


class ReplaceRequest(_Request):
    asset: str | None
    item: str
    customer_id: str
    order: str


class Replacement(BaseModel):
    action_id: str
    sku: str
    family: str
    class_rank: int
    same_model: bool


CallOutcome = Literal["completed", "dropped", "no_answer"]


class CallRequest(_Request):
    to: str
    at: datetime
    reason: str
    customer_id: str


class ScheduledCall(BaseModel):
    call_id: str
    idempotency_key: str
    at: datetime


OwnedKind = Literal["booking", "asset", "order"]


class OwnershipRequest(BaseModel):
    """Is this booking, asset (serial number) or order the customer's? Asked before any
    product action on it, so a case can never act on what belongs to someone else."""

    customer_id: str
    kind: OwnedKind
    ref: str


class Ownership(BaseModel):
    owned: bool
    detail: str = ""


class LedgerEntry(BaseModel):
    """A payment as the payment provider's own books show it."""

    payment_id: str
    idempotency_key: str
    case_id: str
    kind: str
    amount: Money
    created_at: datetime
