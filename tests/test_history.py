"""S2: earlier cases found by customer and asset; the third report of a fault is replaced.

Runs on the real dev server: case history comes from Temporal visibility (search
attributes), which the time-skipping test server does not implement.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from temporalio.testing import WorkflowEnvironment

from makegood.adapters.local.store import LocalStore
from makegood.cli.render import render_status
from makegood.domain.playbook import PlaybookSet
from tests.harness import (
    Case,
    dev_server_and_worker,
    keys,
    playbooks,
    start,
    ticket,
)


@pytest.fixture
async def dev_env(store: LocalStore, task_queue: str) -> AsyncIterator[WorkflowEnvironment]:
    async with dev_server_and_worker(store, task_queue) as env:
        yield env


def closing_at_once() -> PlaybookSet:
    """Earlier reports that were repaired and closed (no week-long follow-up in a test)."""
    book = playbooks()
    warranty = book.playbooks["warranty_fault"]
    quick = warranty.model_copy(
        update={"timeouts": warranty.timeouts.model_copy(update={"follow_up_delay": timedelta(0)})}
    )
    return book.model_copy(update={"playbooks": {**book.playbooks, "warranty_fault": quick}})


async def report(
    env: WorkflowEnvironment,
    store: LocalStore,
    task_queue: str,
    n: int,
    book: PlaybookSet | None = None,
    **incident: str,
) -> Case:
    t = ticket("s2-laptop-screen.json")
    t = t.model_copy(
        update={"id": f"{t.id}-{n}", "incident": t.incident.model_copy(update=incident)}
    )
    return await start(env.client, store, t, task_queue, book, env=env)


async def test_s2_third_report_of_the_same_fault_is_replaced_with_an_equal_or_better_model(
    dev_env: WorkflowEnvironment, store: LocalStore, task_queue: str
) -> None:
    env = dev_env
    earlier = []
    for n in (1, 2):
        case = await report(env, store, task_queue, n, closing_at_once())
        outcome = await case.result()
        assert outcome.resolution == "resolved"
        assert [a["action"] for a in await case.actions()] == ["repair"]
        earlier.append(case.id)
    # Another customer's laptop with the same fault is not this customer's history.
    other = ticket("s2-laptop-screen.json")
    other = other.model_copy(
        update={
            "customer": other.customer.model_copy(update={"id": "C-99"}),
            "incident": other.incident.model_copy(update={"asset": "SN-99"}),
        }
    )
    await (await start(env.client, store, other, task_queue, closing_at_once(), env=env)).result()

    case = await report(env, store, task_queue, 3)
    status = await case.until(lambda s: s.stage == "follow_up", "follow-up")

    assert [(c.case_id, c.same_asset, c.resolution) for c in status.related] == [
        (earlier[0], True, "resolved"),
        (earlier[1], True, "resolved"),
    ]
    history = [e.detail for e in status.events if e.kind in ("history", "diagnosis")]
    assert history == [
        "2 earlier case(s) of this customer or asset, 2 about SN-77",
        "report 3 of screen on SN-77: replace",
    ]
    apology = (await case.messages())[0]
    assert keys([apology]) == ["ack:email"]
    assert earlier[0] in apology["body"] and earlier[1] in apology["body"]
    assert "You do not need to explain anything again" in apology["body"]

    actions = await case.actions()
    assert [(a["action"], a["target"]) for a in actions] == [("replacement", "SN-77")]
    assert "LAPTOP-15 shipped to replace LAPTOP-14 SN-77" in actions[0]["detail"]
    ranks = await store.rows(
        "SELECT sku, class_rank FROM models WHERE sku IN ('LAPTOP-14', 'LAPTOP-15') ORDER BY sku"
    )
    assert ranks[1]["class_rank"] >= ranks[0]["class_rank"]
    assert await store.rows("SELECT quantity FROM stock WHERE sku = 'LAPTOP-15'") == [
        {"quantity": 2}
    ]
    assert await case.payments() == []
    await case.replay(record="s2")


async def test_a_different_fault_on_the_same_device_is_repaired(
    dev_env: WorkflowEnvironment, store: LocalStore, task_queue: str
) -> None:
    env = dev_env
    for n in (1, 2):
        await (await report(env, store, task_queue, n, closing_at_once())).result()
    case = await report(env, store, task_queue, 3, fault="battery")
    status = await case.until(lambda s: s.stage == "follow_up", "follow-up")
    assert len(status.related) == 2
    assert [a["action"] for a in await case.actions()] == ["repair"]


async def test_another_customer_reporting_the_same_serial_learns_nothing_and_gets_nothing_free(
    dev_env: WorkflowEnvironment, store: LocalStore, task_queue: str
) -> None:
    env = dev_env
    earlier = []
    for n in (1, 2):
        case = await report(env, store, task_queue, n, closing_at_once())
        await case.result()
        earlier.append(case.id)
    # A third report of the same fault on SN-77, by someone it is not registered to.
    stranger = ticket("s2-laptop-screen.json")
    stranger = stranger.model_copy(
        update={
            "id": f"{stranger.id}-stranger",
            "customer": stranger.customer.model_copy(
                update={"id": "C-666", "email": "someone.else@example.com", "name": "Sam Else"}
            ),
            "incident": stranger.incident.model_copy(update={"summary": "Screen went black."}),
        }
    )
    case = await start(env.client, store, stranger, task_queue, closing_at_once(), env=env)
    status = await case.until(lambda s: s.resolution is not None, "the case to close")

    # Agents see the owner's cases about the same serial, marked as another customer's ...
    assert [(c.case_id, c.same_asset, c.same_customer) for c in status.related] == [
        (earlier[0], True, False),
        (earlier[1], True, False),
    ]
    # ... the stranger is told nothing of them, and no replacement (nor repair) is made.
    told = [m for m in await case.messages() if m["recipient"] == "someone.else@example.com"]
    assert keys(told)[:2] == ["ack:email", "ownership:email"]
    for message in told:
        assert earlier[0] not in message["body"] and earlier[1] not in message["body"]
        assert "flickers" not in message["body"], "the owner's own words must not leak"
    assert await case.actions() == []
    assert await case.payments() == []
    assert any("asset SN-77 is not verified" in e.reason for e in status.escalations)
    shown = render_status(status)
    assert shown.count("ANOTHER CUSTOMER'S: never shown to this one") == 2
