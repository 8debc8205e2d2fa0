"""The fakes are honest: one activity per spec with the spec's types, and the real providers'
idempotency semantics, so "paid exactly once" asserted on them means what it says."""

from __future__ import annotations

import dataclasses
import typing
from decimal import Decimal
from typing import Any

import pytest
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from makegood.domain import calls
from makegood.domain.money import Money
from makegood.domain.provider import (
    PaymentReceipt,
    PaymentRequest,
    ReleaseRequest,
    ShipRequest,
    StockRequest,
)
from tests.fakes import Fakes, World


def test_one_fake_activity_per_spec_with_the_specs_types() -> None:
    seen = {}
    for fn in Fakes().activities():
        defn = activity._Definition.must_from_callable(fn)
        hints = typing.get_type_hints(fn)
        assert defn.name is not None
        seen[defn.name] = (hints["req"], hints["return"])
    assert list(seen) == [spec.name for spec in calls.ALL]
    for name, (request, result) in seen.items():
        spec = calls.BY_NAME[name]
        assert (request, result) == (spec.request, spec.result), name


def refund(amount: str = "42.00", step: str = "refund") -> PaymentRequest:
    return PaymentRequest(
        step=step,
        kind="refund",
        amount=Money.of(amount, "USD"),
        customer_id="M-42",
        reference="R-1001",
        memo="refund of what you paid",
    )


class Provider:
    """Calls one fake activity the way a worker would, as attempt N of a workflow's call."""

    def __init__(self, fakes: Fakes, workflow_id: str = "case-T-1") -> None:
        self.fakes = fakes
        self.env = ActivityEnvironment()
        self.workflow_id = workflow_id
        self.by_name = {
            str(activity._Definition.must_from_callable(fn).name): fn for fn in fakes.activities()
        }

    async def __call__(self, name: str, req: Any, attempt: int = 1) -> Any:
        self.env.info = dataclasses.replace(
            ActivityEnvironment.default_info(),
            workflow_id=self.workflow_id,
            attempt=attempt,
            activity_type=name,
        )
        return await self.env.run(self.by_name[name], req)


async def test_a_repeated_key_returns_the_first_result_and_is_not_a_second_effect() -> None:
    fakes = Fakes()
    call = Provider(fakes)
    first = await call("make_payment", refund())
    again = await call("make_payment", refund(), attempt=2)
    assert again == first and isinstance(first, PaymentReceipt)
    assert first.idempotency_key == "case-T-1:refund"
    assert [(c.key, c.attempt, c.outcome) for c in fakes.calls] == [
        ("case-T-1:refund", 1, "done"),
        ("case-T-1:refund", 2, "repeat"),
    ]
    assert fakes.paid() == [("refund", "42.00 USD")]
    # The same step in another case is another key, and another payment.
    await Provider(fakes, "case-T-2")("make_payment", refund())
    assert len(fakes.paid()) == 2


async def test_a_key_reused_for_a_different_request_is_refused_for_good() -> None:
    fakes = Fakes()
    call = Provider(fakes)
    await call("make_payment", refund("42.00"))
    with pytest.raises(ApplicationError) as err:
        await call("make_payment", refund("50.00"))
    assert err.value.non_retryable and "already used for a different request" in err.value.message
    assert fakes.paid() == [("refund", "42.00 USD")]


async def test_scripted_transient_failures_then_success() -> None:
    fakes = Fakes()
    fakes.on("make_payment", step="refund").fail(2, "gateway timeout")
    call = Provider(fakes)
    for attempt in (1, 2):
        with pytest.raises(ApplicationError) as err:
            await call("make_payment", refund(), attempt=attempt)
        assert not err.value.non_retryable and err.value.message == "gateway timeout"
    await call("make_payment", refund(), attempt=3)
    assert [c.outcome for c in fakes.calls] == ["failed", "failed", "done"]
    assert fakes.paid() == [("refund", "42.00 USD")]
    # A script for one step leaves the others alone.
    await call("make_payment", refund("5.00", step="reimburse:taxi-1"))
    assert len(fakes.paid()) == 2


async def test_a_lost_reply_committed_the_effect_once() -> None:
    fakes = Fakes()
    fakes.on("make_payment").lose_reply()
    call = Provider(fakes)
    with pytest.raises(ApplicationError):
        await call("make_payment", refund())
    receipt = await call("make_payment", refund(), attempt=2)
    assert [c.outcome for c in fakes.calls] == ["failed", "repeat"]
    assert fakes.done("make_payment")[0].result == receipt
    assert fakes.paid() == [("refund", "42.00 USD")]


async def test_permanent_failures_and_refusals_change_nothing() -> None:
    world = World()
    fakes = Fakes(world)
    fakes.on("make_payment").fail_permanently("card declined")
    call = Provider(fakes)
    with pytest.raises(ApplicationError) as err:
        await call("make_payment", refund())
    assert err.value.non_retryable and err.value.message == "card declined"
    assert fakes.paid() == []

    # The world refuses too: out of stock, an unknown booking. Nothing is taken or released.
    with pytest.raises(ApplicationError) as err:
        await call(
            "ship_item", ShipRequest(step="ship", order="O-1", sku="SHORTS-BLUE-M", customer_id="C")
        )
    assert err.value.non_retryable and err.value.message == "SHORTS-BLUE-M is out of stock"
    with pytest.raises(ApplicationError):
        await call("release_booking", ReleaseRequest(step="release:nope", booking="nope"))
    assert world.stock["SHORTS-BLUE-M"].quantity == 0
    assert fakes.effects == []


async def test_results_can_be_scripted_and_reads_have_no_key() -> None:
    world = World()
    world.stock["SHORTS-BLUE-M"].quantity = 2
    fakes = Fakes(world)
    call = Provider(fakes)
    stock = await call("check_stock", StockRequest(sku="SHORTS-BLUE-M"))
    assert (stock.available, stock.price) == (2, Money(amount=Decimal("27.00"), currency="USD"))
    fakes.on("check_stock").returns(stock.model_copy(update={"available": 0}), times=1)
    assert (await call("check_stock", StockRequest(sku="SHORTS-BLUE-M"))).available == 0
    assert (await call("check_stock", StockRequest(sku="SHORTS-BLUE-M"))).available == 2
    assert [c.key for c in fakes.calls] == [None, None, None]
