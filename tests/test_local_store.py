"""The local providers enforce idempotency keys in their store, across processes too."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from makegood.adapters.base import PermanentProviderError
from makegood.adapters.local.providers import LocalPayments, LocalProductControl
from makegood.adapters.local.store import LocalStore
from makegood.domain.money import Money
from makegood.domain.provider import PaymentRequest, RebookRequest, ReleaseRequest

KEY = "case-T-1:refund"


def refund(amount: str = "42.00") -> PaymentRequest:
    return PaymentRequest(
        step="refund",
        kind="refund",
        amount=Money.of(amount, "USD"),
        customer_id="M-42",
        reference="R-1001",
        memo="refund",
    )


async def test_the_same_key_pays_once_and_returns_the_first_receipt(store: LocalStore) -> None:
    payments = LocalPayments(store)
    first = await payments.pay(KEY, refund())
    again = await payments.pay(KEY, refund())
    assert again == first
    assert await store.rows("SELECT key, amount FROM payments") == [{"key": KEY, "amount": "42.00"}]


async def test_concurrent_attempts_with_one_key_pay_once(store: LocalStore) -> None:
    payments = LocalPayments(store)
    receipts = await asyncio.gather(*(payments.pay(KEY, refund()) for _ in range(20)))
    assert len({r.payment_id for r in receipts}) == 1
    assert len(await store.rows("SELECT id FROM payments")) == 1


async def test_two_processes_sharing_the_file_pay_once(tmp_path: Path) -> None:
    a = await LocalStore(tmp_path / "shared.sqlite").open()
    b = await LocalStore(tmp_path / "shared.sqlite").open()
    try:
        ra, rb = await asyncio.gather(
            LocalPayments(a).pay(KEY, refund()), LocalPayments(b).pay(KEY, refund())
        )
        assert ra == rb
        assert len(await a.rows("SELECT id FROM payments")) == 1
    finally:
        await a.close()
        await b.close()


async def test_a_key_reused_for_a_different_request_is_refused(store: LocalStore) -> None:
    payments = LocalPayments(store)
    await payments.pay(KEY, refund("42.00"))
    with pytest.raises(PermanentProviderError, match="already used for a different request"):
        await payments.pay(KEY, refund("99.00"))
    assert [r["amount"] for r in await store.rows("SELECT amount FROM payments")] == ["42.00"]


async def test_a_refused_effect_leaves_nothing_behind(store: LocalStore) -> None:
    product = LocalProductControl(store)
    request = RebookRequest(
        step="rebook:1",
        customer_id="M-42",
        replaces="R-1001",
        like_vehicle="CAR-404",
        near="Main St 1",
        exclude=[],
        upgrade=False,
    )
    with pytest.raises(PermanentProviderError, match="unknown vehicle 'CAR-404'"):
        await product.rebook("case-T-1:rebook:1", request)
    assert await store.rows("SELECT key FROM idempotency") == []
    assert await store.rows("SELECT id FROM product_actions") == []


async def test_rebooking_takes_the_nearest_car_of_the_class_and_upgrades_when_asked(
    store: LocalStore,
) -> None:
    product = LocalProductControl(store)
    same = await product.rebook(
        "case-T-1:rebook:1",
        RebookRequest(
            step="rebook:1",
            customer_id="M-42",
            replaces="R-1001",
            like_vehicle="CAR-1",
            near="Main St 1",
            exclude=["CAR-1"],
            upgrade=False,
        ),
    )
    better = await product.rebook(
        "case-T-1:rebook:2",
        RebookRequest(
            step="rebook:2",
            customer_id="M-42",
            replaces=same.booking_id,
            like_vehicle="CAR-1",
            near="Main St 1",
            exclude=["CAR-1", same.vehicle],
            upgrade=True,
        ),
    )
    assert (same.vehicle, same.vehicle_class) == ("CAR-2", "compact")
    assert (better.vehicle, better.vehicle_class) == ("CAR-3", "premium")

    await product.release(
        "case-T-1:release", ReleaseRequest(step="release", booking=same.booking_id)
    )
    rows = await store.rows(
        "SELECT vehicle, status FROM bookings WHERE case_id = 'case-T-1' ORDER BY created_at"
    )
    assert [(r["vehicle"], r["status"]) for r in rows] == [
        ("CAR-2", "released"),
        ("CAR-3", "active"),
    ]
    assert await store.rows("SELECT available FROM vehicles WHERE id = ?", same.vehicle) == [
        {"available": 1}
    ]
