"""Activities as methods of classes that receive their adapters, so adapters can be swapped."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from makegood.activities import names
from makegood.adapters.base import (
    Notifier,
    OutcomeStore,
    Payments,
    ProductControl,
    ProviderError,
    Telephony,
)
from makegood.domain.case import CaseOutcome
from makegood.domain.provider import (
    BookingResult,
    CallRequest,
    LocateRequest,
    LocateResult,
    MessageReceipt,
    MessageRequest,
    PaymentReceipt,
    PaymentRequest,
    PerkRequest,
    ProductReceipt,
    Quote,
    QuoteRequest,
    RebookRequest,
    ReleaseRequest,
    RemakeRequest,
    RepairRequest,
    Replacement,
    ReplaceRequest,
    ReturnLabel,
    ReturnRequest,
    ScheduledCall,
    ShipRequest,
    StockRequest,
    StockResult,
    SubstituteRequest,
)

log = structlog.get_logger("makegood.activities")


def idempotency_key(step: str) -> str:
    """`<workflow id>:<step>`: the same on every attempt, so a retry cannot act twice."""
    return f"{activity.info().workflow_id}:{step}"


@contextmanager
def classified(operation: str, key: str | None = None) -> Iterator[structlog.BoundLogger]:
    info = activity.info()
    bound = log.bind(
        case_id=info.workflow_id, activity=operation, attempt=info.attempt, idempotency_key=key
    )
    try:
        yield bound
    except ProviderError as err:
        bound.warning("provider_error", reason=err.reason, code=err.code, retryable=err.retryable)
        raise ApplicationError(
            err.reason,
            {"code": err.code},
            type=type(err).__name__,
            non_retryable=not err.retryable,
        ) from err


class NotificationActivities:
    def __init__(self, notifier: Notifier) -> None:
        self.notifier = notifier

    @activity.defn(name=names.SEND_MESSAGE)
    async def send_message(self, req: MessageRequest) -> MessageReceipt:
        key = idempotency_key(req.step)
        with classified(names.SEND_MESSAGE, key) as bound:
            receipt = await self.notifier.send(key, req)
            bound.info("message_sent", channel=req.channel, message_id=receipt.message_id)
            return receipt


class PaymentActivities:
    def __init__(self, payments: Payments) -> None:
        self.payments = payments

    @activity.defn(name=names.MAKE_PAYMENT)
    async def make_payment(self, req: PaymentRequest) -> PaymentReceipt:
        key = idempotency_key(req.step)
        with classified(names.MAKE_PAYMENT, key) as bound:
            receipt = await self.payments.pay(key, req)
            bound.info(
                "payment_made", kind=req.kind, amount=str(req.amount), payment_id=receipt.payment_id
            )
            return receipt


class ProductActivities:
    def __init__(self, product: ProductControl) -> None:
        self.product = product

    @activity.defn(name=names.LOCATE_VEHICLE)
    async def locate_vehicle(self, req: LocateRequest) -> LocateResult:
        key = idempotency_key(req.step)
        with classified(names.LOCATE_VEHICLE, key):
            return await self.product.locate(key, req)

    @activity.defn(name=names.REBOOK_VEHICLE)
    async def rebook_vehicle(self, req: RebookRequest) -> BookingResult:
        key = idempotency_key(req.step)
        with classified(names.REBOOK_VEHICLE, key) as bound:
            booking = await self.product.rebook(key, req)
            bound.info("rebooked", booking=booking.booking_id, vehicle=booking.vehicle)
            return booking

    @activity.defn(name=names.RELEASE_BOOKING)
    async def release_booking(self, req: ReleaseRequest) -> ProductReceipt:
        key = idempotency_key(req.step)
        with classified(names.RELEASE_BOOKING, key):
            return await self.product.release(key, req)

    @activity.defn(name=names.CHECK_STOCK)
    async def check_stock(self, req: StockRequest) -> StockResult:
        with classified(names.CHECK_STOCK):
            return await self.product.stock(req)

    @activity.defn(name=names.CREATE_RETURN)
    async def create_return(self, req: ReturnRequest) -> ReturnLabel:
        key = idempotency_key(req.step)
        with classified(names.CREATE_RETURN, key):
            return await self.product.create_return(key, req)

    @activity.defn(name=names.QUOTE_SUBSTITUTE)
    async def quote_substitute(self, req: QuoteRequest) -> Quote:
        with classified(names.QUOTE_SUBSTITUTE):
            return await self.product.quote_substitute(req)

    @activity.defn(name=names.PLACE_SUBSTITUTE)
    async def place_substitute(self, req: SubstituteRequest) -> ProductReceipt:
        key = idempotency_key(req.step)
        with classified(names.PLACE_SUBSTITUTE, key):
            return await self.product.place_substitute(key, req)

    @activity.defn(name=names.SHIP_ITEM)
    async def ship_item(self, req: ShipRequest) -> ProductReceipt:
        key = idempotency_key(req.step)
        with classified(names.SHIP_ITEM, key):
            return await self.product.ship(key, req)

    @activity.defn(name=names.GRANT_PERK)
    async def grant_perk(self, req: PerkRequest) -> ProductReceipt:
        key = idempotency_key(req.step)
        with classified(names.GRANT_PERK, key):
            return await self.product.grant_perk(key, req)

    @activity.defn(name=names.REMAKE_ORDER)
    async def remake_order(self, req: RemakeRequest) -> ProductReceipt:
        key = idempotency_key(req.step)
        with classified(names.REMAKE_ORDER, key):
            return await self.product.remake(key, req)

    @activity.defn(name=names.BOOK_REPAIR)
    async def book_repair(self, req: RepairRequest) -> ProductReceipt:
        key = idempotency_key(req.step)
        with classified(names.BOOK_REPAIR, key) as bound:
            receipt = await self.product.book_repair(key, req)
            bound.info("repair_booked", asset=req.asset)
            return receipt

    @activity.defn(name=names.REPLACE_ITEM)
    async def replace_item(self, req: ReplaceRequest) -> Replacement:
        key = idempotency_key(req.step)
        with classified(names.REPLACE_ITEM, key) as bound:
            replacement = await self.product.replace(key, req)
            bound.info("replacement_shipped", sku=replacement.sku, replaces=req.item)
            return replacement


class TelephonyActivities:
    def __init__(self, telephony: Telephony) -> None:
        self.telephony = telephony

    @activity.defn(name=names.SCHEDULE_CALL)
    async def schedule_call(self, req: CallRequest) -> ScheduledCall:
        key = idempotency_key(req.step)
        with classified(names.SCHEDULE_CALL, key) as bound:
            call = await self.telephony.schedule_call(key, req)
            bound.info("call_scheduled", call_id=call.call_id, at=req.at.isoformat())
            return call


class RecordActivities:
    def __init__(self, outcomes: OutcomeStore) -> None:
        self.outcomes = outcomes

    @activity.defn(name=names.RECORD_OUTCOME)
    async def record_outcome(self, outcome: CaseOutcome) -> None:
        with classified(names.RECORD_OUTCOME) as bound:
            await self.outcomes.record(outcome)
            bound.info("outcome_recorded", resolution=outcome.resolution)


def all_activities(
    notifier: Notifier,
    payments: Payments,
    product: ProductControl,
    telephony: Telephony,
    outcomes: OutcomeStore,
) -> list[object]:
    n, p, pc, t, r = (
        NotificationActivities(notifier),
        PaymentActivities(payments),
        ProductActivities(product),
        TelephonyActivities(telephony),
        RecordActivities(outcomes),
    )
    return [
        n.send_message,
        p.make_payment,
        pc.locate_vehicle,
        pc.rebook_vehicle,
        pc.release_booking,
        pc.check_stock,
        pc.create_return,
        pc.quote_substitute,
        pc.place_substitute,
        pc.ship_item,
        pc.grant_perk,
        pc.remake_order,
        pc.book_repair,
        pc.replace_item,
        t.schedule_call,
        r.record_outcome,
    ]
