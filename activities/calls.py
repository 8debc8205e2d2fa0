"""Activities as methods of classes that receive their adapters, so adapters can be swapped."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError, FailureError

from makegood.adapters.base import (
    Notifier,
    OutcomeStore,
    Payments,
    ProductControl,
    ProviderError,
    Replies,
    Telephony,
)
from makegood.domain import calls, ids, plain, steps
from makegood.domain.case import CaseOutcome
from makegood.domain.links import Links
from makegood.domain.provider import (
    BookingResult,
    CallRequest,
    LocateRequest,
    LocateResult,
    MessageReceipt,
    MessageRequest,
    Ownership,
    OwnershipRequest,
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
    workflow_id = activity.info().workflow_id
    assert workflow_id is not None, "Makegood's activities run only inside its workflows"
    return ids.idempotency_key(workflow_id, step)


@contextmanager
def classified(operation: str, key: str | None = None) -> Iterator[structlog.BoundLogger]:
    info = activity.info()
    bound = log.bind(
        case_id=info.workflow_id, activity=operation, attempt=info.attempt, idempotency_key=key
    )
    try:
        yield bound
    except ProviderError as err:
        # The reason stays out of the log: a provider's words can name a person ("no card on
        # file for ..."). It travels in the failure, which the codec encrypts.
        bound.warning("provider_error", code=err.code, retryable=err.retryable)
        raise ApplicationError(
            fit(err.reason),
            {"code": err.code},
            type=type(err).__name__,
            non_retryable=not err.retryable,
        ) from err
    except (FailureError, asyncio.CancelledError):
        raise
    except Exception as err:
        # Anything else (a client library's error quoting a whole response body, say) is
        # retried as before, with its words cut to fit: the SDK would otherwise replace an
        # over-long failure with "Failure exceeds size limit", and the reason would be lost.
        bound.warning("activity_error", error=type(err).__name__)
        raise ApplicationError(
            fit(f"{type(err).__name__}: {err}"), type=type(err).__name__
        ) from None


REASON_LIMIT = 2000


def fit(reason: str, limit: int = REASON_LIMIT) -> str:
    """A failure reason cut to `limit` characters, saying how long it was."""
    if len(reason) <= limit:
        return reason
    note = f" ... [cut: {len(reason)} characters in all]"
    return reason[: limit - len(note)] + note


class NotificationActivities:
    def __init__(
        self, notifier: Notifier, links: Links | None = None, replies: Replies | None = None
    ) -> None:
        self.notifier = notifier
        self.links = links
        self.replies = replies

    @activity.defn(name=calls.SEND_MESSAGE.name)
    async def send_message(self, req: MessageRequest) -> MessageReceipt:
        key = idempotency_key(req.step)
        with classified(calls.SEND_MESSAGE.name, key) as bound:
            req = self._linked(req)
            receipt = await self.notifier.send(key, req)
            await self._await_reply(req)
            bound.info("message_sent", channel=req.channel, message_id=receipt.message_id)
            return receipt

    def _linked(self, req: MessageRequest) -> MessageRequest:
        """A question to the customer carries their link to the case's page. Added here, not
        by the workflow, so the link (a credential) never enters the case's history."""
        question = steps.asked_question(req.step)
        info = activity.info()
        if self.links is None or question is None or info.workflow_id is None:
            return req
        now = info.current_attempt_scheduled_time
        url = self.links.url(info.workflow_id, question, now=now)
        body = plain.with_link(req.body, url)
        if req.channel == "sms":
            body = f"{body}\n{plain.SMS_REPLY_LINE}"
        return req.model_copy(update={"body": body})

    async def _await_reply(self, req: MessageRequest) -> None:
        """An SMS question: noted so that the customer's text reply ("1", "2" or the answer's
        word) answers it. A help, never a reason to fail the message: its link still works."""
        question = steps.asked_question(req.step)
        info = activity.info()
        if self.replies is None or question is None or info.workflow_id is None:
            return
        if req.channel != "sms":
            return
        try:
            await self.replies.asked(
                req.to, info.workflow_id, question, info.current_attempt_scheduled_time
            )
        except Exception as err:
            log.warning("sms_reply_not_noted", case_id=info.workflow_id, error=type(err).__name__)


class PaymentActivities:
    def __init__(self, payments: Payments) -> None:
        self.payments = payments

    @activity.defn(name=calls.MAKE_PAYMENT.name)
    async def make_payment(self, req: PaymentRequest) -> PaymentReceipt:
        key = idempotency_key(req.step)
        with classified(calls.MAKE_PAYMENT.name, key) as bound:
            receipt = await self.payments.pay(key, req)
            bound.info(
                "payment_made", kind=req.kind, amount=str(req.amount), payment_id=receipt.payment_id
            )
            return receipt


class ProductActivities:
    def __init__(self, product: ProductControl) -> None:
        self.product = product

    @activity.defn(name=calls.LOCATE_VEHICLE.name)
    async def locate_vehicle(self, req: LocateRequest) -> LocateResult:
        key = idempotency_key(req.step)
        with classified(calls.LOCATE_VEHICLE.name, key):
            return await self.product.locate(key, req)

    @activity.defn(name=calls.REBOOK_VEHICLE.name)
    async def rebook_vehicle(self, req: RebookRequest) -> BookingResult:
        key = idempotency_key(req.step)
        with classified(calls.REBOOK_VEHICLE.name, key) as bound:
            booking = await self.product.rebook(key, req)
            bound.info("rebooked", booking=booking.booking_id, vehicle=booking.vehicle)
            return booking

    @activity.defn(name=calls.RELEASE_BOOKING.name)
    async def release_booking(self, req: ReleaseRequest) -> ProductReceipt:
        key = idempotency_key(req.step)
        with classified(calls.RELEASE_BOOKING.name, key):
            return await self.product.release(key, req)

    @activity.defn(name=calls.CHECK_STOCK.name)
    async def check_stock(self, req: StockRequest) -> StockResult:
        with classified(calls.CHECK_STOCK.name):
            return await self.product.stock(req)

    @activity.defn(name=calls.CREATE_RETURN.name)
    async def create_return(self, req: ReturnRequest) -> ReturnLabel:
        key = idempotency_key(req.step)
        with classified(calls.CREATE_RETURN.name, key):
            return await self.product.create_return(key, req)

    @activity.defn(name=calls.QUOTE_SUBSTITUTE.name)
    async def quote_substitute(self, req: QuoteRequest) -> Quote:
        with classified(calls.QUOTE_SUBSTITUTE.name):
            return await self.product.quote_substitute(req)

    @activity.defn(name=calls.PLACE_SUBSTITUTE.name)
    async def place_substitute(self, req: SubstituteRequest) -> ProductReceipt:
        key = idempotency_key(req.step)
        with classified(calls.PLACE_SUBSTITUTE.name, key):
            return await self.product.place_substitute(key, req)

    @activity.defn(name=calls.SHIP_ITEM.name)
    async def ship_item(self, req: ShipRequest) -> ProductReceipt:
        key = idempotency_key(req.step)
        with classified(calls.SHIP_ITEM.name, key):
            return await self.product.ship(key, req)

    @activity.defn(name=calls.GRANT_PERK.name)
    async def grant_perk(self, req: PerkRequest) -> ProductReceipt:
        key = idempotency_key(req.step)
        with classified(calls.GRANT_PERK.name, key):
            return await self.product.grant_perk(key, req)

    @activity.defn(name=calls.REMAKE_ORDER.name)
    async def remake_order(self, req: RemakeRequest) -> ProductReceipt:
        key = idempotency_key(req.step)
        with classified(calls.REMAKE_ORDER.name, key):
            return await self.product.remake(key, req)

    @activity.defn(name=calls.VERIFY_OWNERSHIP.name)
    async def verify_ownership(self, req: OwnershipRequest) -> Ownership:
        with classified(calls.VERIFY_OWNERSHIP.name) as bound:
            found = await self.product.verify_ownership(req)
            bound.info("ownership", kind=req.kind, owned=found.owned)
            return found

    @activity.defn(name=calls.BOOK_REPAIR.name)
    async def book_repair(self, req: RepairRequest) -> ProductReceipt:
        key = idempotency_key(req.step)
        with classified(calls.BOOK_REPAIR.name, key) as bound:
            receipt = await self.product.book_repair(key, req)
            bound.info("repair_booked", asset=req.asset)
            return receipt

    @activity.defn(name=calls.REPLACE_ITEM.name)
    async def replace_item(self, req: ReplaceRequest) -> Replacement:
        key = idempotency_key(req.step)
        with classified(calls.REPLACE_ITEM.name, key) as bound:
            replacement = await self.product.replace(key, req)
            bound.info("replacement_shipped", sku=replacement.sku, replaces=req.item)
            return replacement


class TelephonyActivities:
    def __init__(self, telephony: Telephony) -> None:
        self.telephony = telephony

    @activity.defn(name=calls.SCHEDULE_CALL.name)
    async def schedule_call(self, req: CallRequest) -> ScheduledCall:
        key = idempotency_key(req.step)
        with classified(calls.SCHEDULE_CALL.name, key) as bound:
            call = await self.telephony.schedule_call(key, req)
            bound.info("call_scheduled", call_id=call.call_id, at=req.at.isoformat())
            return call


class RecordActivities:
    def __init__(self, outcomes: OutcomeStore) -> None:
        self.outcomes = outcomes

    @activity.defn(name=calls.RECORD_OUTCOME.name)
    async def record_outcome(self, outcome: CaseOutcome) -> None:
        with classified(calls.RECORD_OUTCOME.name) as bound:
            await self.outcomes.record(outcome)
            bound.info("outcome_recorded", resolution=outcome.resolution)


def all_activities(
    notifier: Notifier,
    payments: Payments,
    product: ProductControl,
    telephony: Telephony,
    outcomes: OutcomeStore,
    links: Links | None = None,
    replies: Replies | None = None,
) -> list[object]:
    n, p, pc, t, r = (
        NotificationActivities(notifier, links, replies),
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
        pc.verify_ownership,
        t.schedule_call,
        r.record_outcome,
    ]
