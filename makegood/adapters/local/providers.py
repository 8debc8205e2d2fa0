from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

import aiosqlite

from makegood.adapters.base import PermanentProviderError
from makegood.adapters.local.store import LocalStore, now, short_id
from makegood.domain.case import CaseOutcome
from makegood.domain.ids import case_of
from makegood.domain.money import Money
from makegood.domain.provider import (
    BookingResult,
    CallRequest,
    LedgerEntry,
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


class LocalNotifier:
    """Keeps every message in the store's outbox, exactly once per key."""

    def __init__(self, store: LocalStore) -> None:
        self.store = store

    async def send(self, key: str, req: MessageRequest) -> MessageReceipt:
        async def effect(conn: aiosqlite.Connection) -> MessageReceipt:
            receipt = MessageReceipt(
                message_id=short_id("msg", key),
                idempotency_key=key,
                channel=req.channel,
                to=req.to,
                sent_at=datetime.fromisoformat(now()),
            )
            await conn.execute(
                "INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    receipt.message_id,
                    key,
                    case_of(key),
                    req.channel,
                    req.to,
                    req.subject,
                    req.body,
                    receipt.sent_at.isoformat(),
                ),
            )
            return receipt

        return await self.store.once(key, "send", req, MessageReceipt, effect)


class LocalPayments:
    def __init__(self, store: LocalStore) -> None:
        self.store = store

    async def pay(self, key: str, req: PaymentRequest) -> PaymentReceipt:
        async def effect(conn: aiosqlite.Connection) -> PaymentReceipt:
            receipt = PaymentReceipt(
                payment_id=short_id("pay", key),
                idempotency_key=key,
                kind=req.kind,
                amount=req.amount,
                created_at=datetime.fromisoformat(now()),
            )
            await conn.execute(
                "INSERT INTO payments VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    receipt.payment_id,
                    key,
                    case_of(key),
                    req.kind,
                    str(req.amount.amount),
                    req.amount.currency,
                    req.customer_id,
                    req.reference,
                    req.memo,
                    receipt.created_at.isoformat(),
                ),
            )
            return receipt

        return await self.store.once(key, f"pay:{req.kind}", req, PaymentReceipt, effect)

    async def ledger(self, case_ids: Sequence[str] | None = None) -> list[LedgerEntry]:
        rows = await self.store.rows("SELECT * FROM payments ORDER BY created_at, key")
        wanted = set(case_ids) if case_ids is not None else None
        return [
            LedgerEntry(
                payment_id=r["id"],
                idempotency_key=r["key"],
                case_id=r["case_id"],
                kind=r["kind"],
                amount=Money(amount=Decimal(r["amount"]), currency=r["currency"]),
                created_at=datetime.fromisoformat(r["created_at"]),
            )
            for r in rows
            if wanted is None or r["case_id"] in wanted
        ]


class LocalProductControl:
    """A small car-sharing fleet, a stock list and an order desk, in the store."""

    def __init__(self, store: LocalStore) -> None:
        self.store = store

    async def _action(
        self, conn: aiosqlite.Connection, key: str, action: str, target: str, detail: str
    ) -> ProductReceipt:
        receipt = ProductReceipt(
            action_id=short_id("act", key), idempotency_key=key, action=action, detail=detail
        )
        await conn.execute(
            "INSERT INTO product_actions VALUES (?, ?, ?, ?, ?, ?, ?)",
            (receipt.action_id, key, case_of(key), action, target, detail, now()),
        )
        return receipt

    @staticmethod
    async def _vehicle(conn: aiosqlite.Connection, vehicle: str) -> aiosqlite.Row:
        cur = await conn.execute("SELECT * FROM vehicles WHERE id = ?", (vehicle,))
        row = await cur.fetchone()
        if row is None:
            raise PermanentProviderError(f"unknown vehicle {vehicle!r}", code="unknown_vehicle")
        return row

    async def locate(self, key: str, req: LocateRequest) -> LocateResult:
        async def effect(conn: aiosqlite.Connection) -> LocateResult:
            row = await self._vehicle(conn, req.vehicle)
            await self._action(conn, key, "honk", req.vehicle, f"horn sounded at {row['location']}")
            return LocateResult(vehicle=req.vehicle, honked=True, location=row["location"])

        return await self.store.once(key, "locate", req, LocateResult, effect)

    async def rebook(self, key: str, req: RebookRequest) -> BookingResult:
        async def effect(conn: aiosqlite.Connection) -> BookingResult:
            like = await self._vehicle(conn, req.like_vehicle)
            rank_clause = "class_rank > ?" if req.upgrade else "class_rank = ?"
            marks = ",".join("?" for _ in req.exclude) or "''"
            cur = await conn.execute(
                f"SELECT * FROM vehicles WHERE available = 1 AND {rank_clause}"
                f" AND id NOT IN ({marks})"
                " ORDER BY location != ?, class_rank, id LIMIT 1",
                (like["class_rank"], *req.exclude, req.near),
            )
            car = await cur.fetchone()
            if car is None:
                wanted = "a higher class" if req.upgrade else f"class {like['class']}"
                raise PermanentProviderError(
                    f"no vehicle of {wanted} available near {req.near}", code="no_vehicle"
                )
            booking_id = short_id("bk", key)
            await conn.execute("UPDATE vehicles SET available = 0 WHERE id = ?", (car["id"],))
            await conn.execute(
                "INSERT INTO bookings VALUES (?, ?, ?, ?, 'active', ?, NULL)",
                (booking_id, car["id"], req.customer_id, case_of(key), now()),
            )
            await self._action(
                conn,
                key,
                "rebook",
                booking_id,
                f"{car['id']} ({car['class']}) replaces {req.replaces}",
            )
            return BookingResult(
                booking_id=booking_id,
                vehicle=car["id"],
                vehicle_class=car["class"],
                location=car["location"],
            )

        return await self.store.once(key, "rebook", req, BookingResult, effect)

    async def release(self, key: str, req: ReleaseRequest) -> ProductReceipt:
        async def effect(conn: aiosqlite.Connection) -> ProductReceipt:
            cur = await conn.execute("SELECT vehicle FROM bookings WHERE id = ?", (req.booking,))
            row = await cur.fetchone()
            if row is None:
                raise PermanentProviderError(
                    f"unknown booking {req.booking!r}", code="unknown_booking"
                )
            await conn.execute(
                "UPDATE bookings SET status = 'released', released_at = ? WHERE id = ?",
                (now(), req.booking),
            )
            await conn.execute("UPDATE vehicles SET available = 1 WHERE id = ?", (row["vehicle"],))
            return await self._action(
                conn, key, "release", req.booking, f"booking {req.booking} released"
            )

        return await self.store.once(key, "release", req, ProductReceipt, effect)

    async def _price(self, sku: str) -> tuple[int, Money]:
        rows = await self.store.rows("SELECT * FROM stock WHERE sku = ?", sku)
        if not rows:
            raise PermanentProviderError(f"unknown SKU {sku!r}", code="unknown_sku")
        row = rows[0]
        return row["quantity"], Money(amount=Decimal(row["price"]), currency=row["currency"])

    async def stock(self, req: StockRequest) -> StockResult:
        quantity, price = await self._price(req.sku)
        return StockResult(sku=req.sku, available=quantity, price=price)

    async def create_return(self, key: str, req: ReturnRequest) -> ReturnLabel:
        async def effect(conn: aiosqlite.Connection) -> ReturnLabel:
            label = ReturnLabel(
                label_id=short_id("lbl", key), form_id=short_id("form", key), prepaid=True
            )
            await self._action(
                conn,
                key,
                "return_label",
                req.order,
                f"prepaid label {label.label_id} and pre-filled form {label.form_id} for {req.sku}",
            )
            return label

        return await self.store.once(key, "create_return", req, ReturnLabel, effect)

    async def quote_substitute(self, req: QuoteRequest) -> Quote:
        _, original = await self._price(req.original_sku)
        quantity, price = await self._price(req.substitute_sku)
        difference = max(price.amount - original.amount, Decimal(0))
        return Quote(
            substitute_sku=req.substitute_sku,
            available=quantity > 0,
            difference=Money(amount=difference, currency=price.currency),
        )

    async def _take_stock(self, conn: aiosqlite.Connection, sku: str) -> None:
        cur = await conn.execute(
            "UPDATE stock SET quantity = quantity - 1 WHERE sku = ? AND quantity > 0", (sku,)
        )
        if cur.rowcount != 1:
            raise PermanentProviderError(f"{sku} is out of stock", code="out_of_stock")

    async def place_substitute(self, key: str, req: SubstituteRequest) -> ProductReceipt:
        async def effect(conn: aiosqlite.Connection) -> ProductReceipt:
            await self._take_stock(conn, req.sku)
            return await self._action(
                conn,
                key,
                "substitute_order",
                req.order,
                f"{req.sku} sent for order {req.order}, {req.waived} of price difference waived",
            )

        return await self.store.once(key, "place_substitute", req, ProductReceipt, effect)

    async def ship(self, key: str, req: ShipRequest) -> ProductReceipt:
        async def effect(conn: aiosqlite.Connection) -> ProductReceipt:
            await self._take_stock(conn, req.sku)
            return await self._action(
                conn, key, "ship", req.order, f"{req.sku} shipped for order {req.order}"
            )

        return await self.store.once(key, "ship", req, ProductReceipt, effect)

    async def grant_perk(self, key: str, req: PerkRequest) -> ProductReceipt:
        async def effect(conn: aiosqlite.Connection) -> ProductReceipt:
            await conn.execute(
                "INSERT OR IGNORE INTO perks VALUES (?, ?, ?)", (req.customer_id, req.perk, now())
            )
            return await self._action(
                conn, key, "perk", req.customer_id, f"{req.perk} granted to {req.customer_id}"
            )

        return await self.store.once(key, "grant_perk", req, ProductReceipt, effect)

    async def remake(self, key: str, req: RemakeRequest) -> ProductReceipt:
        async def effect(conn: aiosqlite.Connection) -> ProductReceipt:
            return await self._action(
                conn, key, "remake", req.order, f"{req.item} remade for order {req.order}"
            )

        return await self.store.once(key, "remake", req, ProductReceipt, effect)

    async def book_repair(self, key: str, req: RepairRequest) -> ProductReceipt:
        async def effect(conn: aiosqlite.Connection) -> ProductReceipt:
            return await self._action(
                conn,
                key,
                "repair",
                req.asset,
                f"repair of {req.item} {req.asset} ({req.fault}) booked,"
                " prepaid shipping box on its way",
            )

        return await self.store.once(key, "book_repair", req, ProductReceipt, effect)

    async def replace(self, key: str, req: ReplaceRequest) -> Replacement:
        """The same model if in stock, else the nearest better one of the same family."""

        async def effect(conn: aiosqlite.Connection) -> Replacement:
            cur = await conn.execute("SELECT * FROM models WHERE sku = ?", (req.item,))
            model = await cur.fetchone()
            if model is None:
                raise PermanentProviderError(f"unknown model {req.item!r}", code="unknown_sku")
            cur = await conn.execute(
                "SELECT m.sku, m.class_rank FROM models m JOIN stock s ON s.sku = m.sku"
                " WHERE m.family = ? AND m.class_rank >= ? AND s.quantity > 0"
                " ORDER BY m.sku != ?, m.class_rank, m.sku LIMIT 1",
                (model["family"], model["class_rank"], req.item),
            )
            pick = await cur.fetchone()
            if pick is None:
                raise PermanentProviderError(
                    f"no {model['family']} of class {model['class_rank']} or better in stock",
                    code="out_of_stock",
                )
            await self._take_stock(conn, pick["sku"])
            receipt = await self._action(
                conn,
                key,
                "replacement",
                req.asset or req.order,
                f"{pick['sku']} shipped to replace {req.item}"
                + (f" {req.asset}" if req.asset else ""),
            )
            return Replacement(
                action_id=receipt.action_id,
                sku=pick["sku"],
                family=model["family"],
                class_rank=pick["class_rank"],
                same_model=pick["sku"] == req.item,
            )

        return await self.store.once(key, "replace", req, Replacement, effect)

    async def verify_ownership(self, req: OwnershipRequest) -> Ownership:
        """A booking must be on record as the customer's. An asset or order on record must be
        the customer's; one not on record yet is registered to the first customer who reports
        it (the local stand-in for a product database), so nobody else can claim it later."""
        async with self.store.transaction() as conn:
            if req.kind == "booking":
                cur = await conn.execute(
                    "SELECT customer_id FROM bookings WHERE id = ?", (req.ref,)
                )
                row = await cur.fetchone()
                if row is None:
                    return Ownership(owned=False, detail=f"no booking {req.ref} on record")
                owner = row["customer_id"]
            else:
                await conn.execute(
                    "INSERT OR IGNORE INTO registrations VALUES (?, ?, ?, ?)",
                    (req.kind, req.ref, req.customer_id, now()),
                )
                cur = await conn.execute(
                    "SELECT customer_id FROM registrations WHERE kind = ? AND ref = ?",
                    (req.kind, req.ref),
                )
                registered = await cur.fetchone()
                assert registered is not None  # inserted just above if it was missing
                owner = registered["customer_id"]
        if owner != req.customer_id:
            return Ownership(
                owned=False, detail=f"{req.kind} {req.ref} is registered to another customer"
            )
        return Ownership(owned=True)


class LocalTelephony:
    """Books calls in the store. Its status callbacks come from `makegood call-status`."""

    def __init__(self, store: LocalStore) -> None:
        self.store = store

    async def schedule_call(self, key: str, req: CallRequest) -> ScheduledCall:
        async def effect(conn: aiosqlite.Connection) -> ScheduledCall:
            call = ScheduledCall(call_id=short_id("call", key), idempotency_key=key, at=req.at)
            await conn.execute(
                "INSERT INTO calls VALUES (?, ?, ?, ?, ?, ?, ?)",
                (call.call_id, key, case_of(key), req.to, req.at.isoformat(), req.reason, now()),
            )
            return call

        return await self.store.once(key, "schedule_call", req, ScheduledCall, effect)


class LocalOutcomes:
    def __init__(self, store: LocalStore) -> None:
        self.store = store

    async def record(self, outcome: CaseOutcome) -> None:
        async with self.store.transaction() as conn:
            await conn.execute(
                "INSERT INTO outcomes VALUES (?, ?, ?) ON CONFLICT (case_id) DO UPDATE"
                " SET outcome = excluded.outcome, recorded_at = excluded.recorded_at",
                (outcome.case_id, outcome.model_dump_json(), now()),
            )
