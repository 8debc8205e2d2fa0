"""S1, S4 and S5 end to end on the time-skipping server, with the real local adapters."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal

import pytest
from temporalio.testing import WorkflowEnvironment

from adapters.local.store import LocalStore
from tests.harness import keys, local_adapters, start, ticket, time_skipping_env
from worker import build_worker


@pytest.fixture
async def env(store: LocalStore, task_queue: str) -> AsyncIterator[WorkflowEnvironment]:
    async with await time_skipping_env() as env:
        async with build_worker(env.client, task_queue, local_adapters(store).activities()):
            yield env


async def test_s5_wrong_drink_remade_and_refunded_without_approval(
    env: WorkflowEnvironment, store: LocalStore, task_queue: str
) -> None:
    case = await start(env.client, store, ticket("s5-wrong-drink.json"), task_queue, env=env)
    outcome = await case.result()

    assert outcome.resolution == "resolved"
    assert outcome.approval_needed is False
    assert [a["action"] for a in await case.actions()] == ["remake"]
    payments = await case.payments()
    assert [(p["kind"], p["amount"], p["currency"]) for p in payments] == [
        ("refund", "4.80", "USD")
    ]
    assert keys(await case.messages()) == ["ack:sms", "confirm:sms"]
    confirmation = (await case.messages())[-1]["body"]
    assert "remade oat-flat-white" in confirmation and "4.80 USD" in confirmation
    # No follow-up wait: the case closed right after the confirmation, in simulated time too.
    assert outcome.seconds_to_close < 60
    recorded = await store.rows("SELECT outcome FROM outcomes WHERE case_id = ?", case.id)
    assert len(recorded) == 1 and '"resolution":"resolved"' in recorded[0]["outcome"]
