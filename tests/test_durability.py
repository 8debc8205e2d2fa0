"""Provider faults: lost replies, transient outages and permanent refusals.

Each test wraps a real local provider so that it fails the way real ones do, and reads the
provider's own records to show money and messages happen exactly once.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import pytest
from temporalio.testing import WorkflowEnvironment

from makegood.adapters.base import PermanentProviderError, TransientProviderError
from makegood.adapters.local.providers import LocalNotifier, LocalPayments
from makegood.adapters.local.store import LocalStore
from makegood.adapters.wiring import Adapters
from makegood.audit.formats import as_text
from makegood.audit.timeline import timeline
from makegood.domain.case import CaseOutcome, CaseStatus
from makegood.domain.provider import MessageReceipt, MessageRequest, PaymentReceipt, PaymentRequest
from makegood.privacy.codec import decode_history
from makegood.registry import build_worker
from tests.harness import Case, local_adapters, playbooks, start, ticket

OPS = "ops@makegood.example.com"
FAST = playbooks(fast_retries=True)


class ReplyLostPayments:
    """The provider applies the payment, then the reply is lost (crash, reset connection)."""

    def __init__(self, inner: LocalPayments, lose: int = 1) -> None:
        self.inner, self.lose, self.calls = inner, lose, Counter[str]()

    async def pay(self, key: str, req: PaymentRequest) -> PaymentReceipt:
        self.calls[key] += 1
        receipt = await self.inner.pay(key, req)
        if self.calls[key] <= self.lose:
            raise ConnectionResetError("connection reset after the provider committed")
        return receipt


class ReplyLostNotifier:
    def __init__(self, inner: LocalNotifier, step: str) -> None:
        self.inner, self.step, self.calls = inner, step, Counter[str]()

    async def send(self, key: str, req: MessageRequest) -> MessageReceipt:
        self.calls[key] += 1
        receipt = await self.inner.send(key, req)
        if req.step == self.step and self.calls[key] == 1:
            raise ConnectionResetError("connection reset after the message was accepted")
        return receipt


class FailingPayments:
    """Refuses `failures` times (all of them when None) with the given error, then pays."""

    def __init__(self, inner: LocalPayments, error: Exception, failures: int | None) -> None:
        self.inner, self.error, self.failures, self.calls = inner, error, failures, Counter[str]()

    async def pay(self, key: str, req: PaymentRequest) -> PaymentReceipt:
        self.calls[key] += 1
        if self.failures is None or self.calls[key] <= self.failures:
            raise self.error
        return await self.inner.pay(key, req)


@pytest.fixture
def adapters(store: LocalStore) -> Adapters:
    return local_adapters(store)


async def run_s5(
    env: WorkflowEnvironment, store: LocalStore, adapters: Adapters, task_queue: str
) -> tuple[Case, CaseOutcome, CaseStatus]:
    """S5 (the wrong drink: one refund, two texts) to its end, on these adapters."""
    async with build_worker(env.client, task_queue, adapters.activities()):
        case = await start(
            env.client, store, ticket("s5-wrong-drink.json"), task_queue, FAST, env=env
        )
        outcome = await case.result()
        return case, outcome, await case.status()


@pytest.mark.parametrize("lost_replies", [1, 3])
async def test_payment_applied_but_reply_lost_is_retried_and_paid_once(
    bare_env: WorkflowEnvironment,
    store: LocalStore,
    adapters: Adapters,
    task_queue: str,
    lost_replies: int,
) -> None:
    payments = ReplyLostPayments(LocalPayments(store), lose=lost_replies)
    adapters.payments = payments
    case, outcome, status = await run_s5(bare_env, store, adapters, task_queue)

    key = f"{case.id}:refund"
    assert payments.calls[key] == lost_replies + 1, "the activity was retried"
    rows = await case.payments()
    assert [(p["key"], p["amount"]) for p in rows] == [(key, "4.80")], "and paid once"
    refund = next(i for i in status.compensation if i.kind == "refund")
    assert refund.state == "paid" and refund.receipt == rows[0]["id"]
    assert outcome.paid_out.amount == Decimal("4.80")
    assert not status.escalations


async def test_confirmation_sent_but_reply_lost_reaches_the_customer_once(
    bare_env: WorkflowEnvironment, store: LocalStore, adapters: Adapters, task_queue: str
) -> None:
    notifier = ReplyLostNotifier(LocalNotifier(store), step="confirm:sms")
    adapters.notifier = notifier
    case, _, _ = await run_s5(bare_env, store, adapters, task_queue)

    assert notifier.calls[f"{case.id}:confirm:sms"] == 2
    confirmations = [m for m in await case.messages() if m["key"].endswith(":confirm:sms")]
    assert len(confirmations) == 1


async def test_transient_payment_outage_is_retried_with_backoff_then_paid_once(
    bare_env: WorkflowEnvironment, store: LocalStore, adapters: Adapters, task_queue: str
) -> None:
    payments = FailingPayments(
        LocalPayments(store), TransientProviderError("gateway timeout", code="503"), failures=3
    )
    adapters.payments = payments
    case, _, _ = await run_s5(bare_env, store, adapters, task_queue)

    assert payments.calls[f"{case.id}:refund"] == 4
    assert [p["amount"] for p in await case.payments()] == ["4.80"]


async def test_declined_payment_is_not_retried_and_escalates_with_the_reason(
    bare_env: WorkflowEnvironment, store: LocalStore, adapters: Adapters, task_queue: str
) -> None:
    payments = FailingPayments(
        LocalPayments(store),
        PermanentProviderError("card declined", code="card_declined"),
        failures=None,
    )
    adapters.payments = payments
    case, outcome, status = await run_s5(bare_env, store, adapters, task_queue)

    assert payments.calls[f"{case.id}:refund"] == 1, "a permanent refusal is not retried"
    assert await case.payments() == []
    refund = next(i for i in status.compensation if i.kind == "refund")
    assert refund.state == "failed" and refund.failure == "card declined"
    assert [e.reason for e in status.escalations] == [
        "refund of what you paid failed: card declined"
    ]
    ops_mail = [m for m in await case.messages() if m["recipient"] == OPS]
    assert len(ops_mail) == 1 and "card declined" in ops_mail[0]["body"]
    assert outcome.paid_out.amount == Decimal(0) and outcome.escalations == 1


async def test_a_providers_failure_message_is_encrypted_in_history_and_read_with_the_key(
    bare_env: WorkflowEnvironment,
    store: LocalStore,
    adapters: Adapters,
    task_queue: str,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Providers' errors name people ("no account for mia.chen@..."): failure messages are
    moved into encoded attributes, which the codec encrypts like every other payload."""
    who = "mia.chen@example.com"
    adapters.payments = FailingPayments(
        LocalPayments(store),
        PermanentProviderError(f"no card on file for {who}", code="no_card"),
        failures=None,
    )
    case, _, status = await run_s5(bare_env, store, adapters, task_queue)
    assert status.escalations[0].reason.endswith(f"no card on file for {who}")  # the case knew

    history = await case.handle.fetch_history()
    assert who.encode() not in history.to_json().encode(), "a failure message in plain text"
    readable = await decode_history(history, bare_env.client.data_converter)
    lines = as_text(timeline([readable]))
    assert f"make_payment (refund) failed: no card on file for {who}" in lines
    logged = capfd.readouterr()
    assert "provider_error" in logged.out + logged.err and "no_card" in logged.out + logged.err
    assert who not in logged.out + logged.err, "the provider's words reached a log"
    assert not any(who in r.getMessage() for r in caplog.records), "...or a workflow's log"


async def test_payment_outage_that_never_ends_gives_up_within_the_deadline_and_escalates(
    bare_env: WorkflowEnvironment, store: LocalStore, adapters: Adapters, task_queue: str
) -> None:
    payments = FailingPayments(
        LocalPayments(store), TransientProviderError("gateway timeout", code="503"), failures=None
    )
    adapters.payments = payments
    case, outcome, status = await run_s5(bare_env, store, adapters, task_queue)

    assert payments.calls[f"{case.id}:refund"] == 5, "bounded by the playbook's attempts"
    assert await case.payments() == []
    refund = next(i for i in status.compensation if i.kind == "refund")
    assert refund.state == "failed"
    assert refund.failure == "gateway timeout (gave up after retries)"
    assert status.escalations and "gateway timeout" in status.escalations[0].reason
    assert outcome.escalations == 1
