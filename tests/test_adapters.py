"""The real adapters against real protocol peers: an SMTP server (aiosmtpd) and HTTP
providers that fail on purpose. Each payment and message must still happen once."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from temporalio.testing import WorkflowEnvironment

from makegood.adapters.base import PermanentProviderError, TransientProviderError
from makegood.adapters.local.store import LocalStore
from makegood.adapters.real.http import HttpNotifier, HttpPayments, HttpProvider, HttpTelephony
from makegood.adapters.real.smtp import SmtpConfig, SmtpNotifier, message_id
from makegood.adapters.routing import ChannelRouter
from makegood.adapters.wiring import configured_adapters
from makegood.credentials import new_webhook_secret
from makegood.domain.money import Money
from makegood.domain.provider import CallRequest, MessageRequest, PaymentRequest
from makegood.registry import build_worker
from makegood.settings import Settings
from tests.api_harness import free_port
from tests.harness import SEED, keys, local_adapters, playbooks, start, ticket
from tests.providers import Providers, serving

SECRET = "provider-shared-secret"
FAST = playbooks(fast_retries=True)


class Inbox:
    """An SMTP server's handler: keeps what it accepts, or answers with a set error."""

    def __init__(self) -> None:
        self.received: list[Message] = []
        self.answer: list[str] = []

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        if self.answer:
            return self.answer.pop(0)
        self.received.append(message_from_bytes(envelope.content))  # type: ignore[arg-type]
        return "250 OK"


def _authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == b"makegood"
        and auth_data.password == b"s3cret"
    )
    return AuthResult(success=ok)


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, SmtpConfig]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=_authenticator,
        auth_require_tls=False,
        auth_required=True,
    )
    controller.start()
    try:
        yield (
            inbox,
            SmtpConfig(
                host="127.0.0.1", port=port, username="makegood", password="s3cret", timeout_s=5
            ),
        )
    finally:
        controller.stop()


def email(step: str = "confirm:email") -> MessageRequest:
    return MessageRequest(
        step=step,
        channel="email",
        to="ada@example.com",
        subject="Confirmation",
        body="All done.",
        customer_id="M-42",
    )


async def test_smtp_sends_once_per_key_with_a_stable_message_id(
    smtp: tuple[Inbox, SmtpConfig], store: LocalStore
) -> None:
    inbox, config = smtp
    notifier = SmtpNotifier(config, store)
    key = "case-T-1:confirm:email"
    first = await notifier.send(key, email())
    again = await notifier.send(key, email())
    assert again == first
    assert len(inbox.received) == 1
    mail = inbox.received[0]
    assert mail["Message-ID"] == message_id(key) and mail["To"] == "ada@example.com"
    assert mail.get_payload().strip() == "All done."  # type: ignore[union-attr]


async def test_smtp_4xx_is_retried_and_5xx_is_final(
    smtp: tuple[Inbox, SmtpConfig], store: LocalStore
) -> None:
    inbox, config = smtp
    notifier = SmtpNotifier(config, store)
    inbox.answer.append("451 4.3.0 mailbox busy, try later")
    with pytest.raises(TransientProviderError, match="451"):
        await notifier.send("case-T-1:ack:email", email("ack:email"))
    await notifier.send("case-T-1:ack:email", email("ack:email"))  # the retry gets through
    inbox.answer.append("550 5.1.1 no such user")
    with pytest.raises(PermanentProviderError, match="550"):
        await notifier.send("case-T-1:ask:email", email("ask:email"))
    assert [m["Message-ID"] for m in inbox.received] == [message_id("case-T-1:ack:email")]


@pytest.fixture
async def providers(tmp_path: Path) -> AsyncIterator[Providers]:
    # The providers keep their own books, in a store of their own.
    books = await LocalStore(tmp_path / "providers.sqlite").open()
    await books.seed_file(SEED)
    try:
        async with serving(books, SECRET) as running:
            yield running
    finally:
        await books.close()


def http(providers: Providers, *, secret: str = SECRET, timeout_s: float = 5.0) -> HttpProvider:
    return HttpProvider(providers.url, secret, timeout_s=timeout_s)


async def test_a_payment_committed_but_answered_with_500_is_paid_once(
    bare_env: WorkflowEnvironment,
    store: LocalStore,
    providers: Providers,
    task_queue: str,
) -> None:
    providers.fail("/payments", "commit_then_500")
    providers.fail("/payments/lookup", "pass", "500")
    providers.fail("/messages", "500", "commit_then_500")
    adapters = local_adapters(store)
    client = http(providers)
    adapters.payments = HttpPayments(client)
    adapters.notifier = ChannelRouter(
        email=adapters.notifier, sms=HttpNotifier(client), app=HttpNotifier(client)
    )
    async with build_worker(bare_env.client, task_queue, adapters.activities()):
        case = await start(
            bare_env.client, store, ticket("s5-wrong-drink.json"), task_queue, FAST, env=bare_env
        )
        outcome = await case.result()
    await client.close()

    books = await providers.store.rows("SELECT key, amount FROM payments")
    assert books == [{"key": f"{case.id}:refund", "amount": "4.80"}]
    # Booked, answer lost; the retry's lookup failed too; the next one found the payment.
    assert providers.calls["/payments"] == 1 and providers.calls["/payments/lookup"] == 3
    texts = await providers.store.rows("SELECT key FROM messages ORDER BY sent_at")
    assert keys(texts) == ["ack:sms", "confirm:sms"]
    assert outcome.paid_out == Money.of("4.80", "USD")


async def test_a_slow_provider_times_out_and_the_retry_does_not_pay_twice(
    providers: Providers,
) -> None:
    providers.slow_s = 1.0
    providers.fail("/payments", "slow")
    client = http(providers, timeout_s=0.3)
    payments = HttpPayments(client)
    req = PaymentRequest(
        step="refund",
        kind="refund",
        amount=Money.of("4.80", "USD"),
        customer_id="C-88",
        reference="ORD-3001",
        memo="refund",
    )
    with pytest.raises(TransientProviderError, match="timed out"):
        await payments.pay("case-T-9:refund", req)
    # The provider finished the slow request after all; the retry looks it up first.
    for _ in range(50):
        if await providers.store.rows("SELECT key FROM payments"):
            break
        await asyncio.sleep(0.05)
    receipt = await payments.pay("case-T-9:refund", req)
    assert receipt.amount == Money.of("4.80", "USD")
    assert len(await providers.store.rows("SELECT key FROM payments")) == 1
    assert [e.idempotency_key for e in await payments.ledger(["case-T-9"])] == ["case-T-9:refund"]
    await client.close()


async def test_declines_and_bad_signatures_are_final_and_classified(
    providers: Providers,
) -> None:
    req = PaymentRequest(
        step="refund",
        kind="refund",
        amount=Money.of("4.80", "USD"),
        customer_id="C-88",
        reference="ORD-3001",
        memo="refund",
    )
    providers.fail("/payments", "400")
    client = http(providers)
    with pytest.raises(PermanentProviderError, match="402 card declined"):
        await HttpPayments(client).pay("case-T-8:refund", req)
    await client.close()
    forged = http(providers, secret="not-the-secret")
    with pytest.raises(PermanentProviderError, match="401 bad signature"):
        await HttpTelephony(forged).schedule_call(
            "case-T-8:callback:call:1",
            CallRequest(
                step="call:1",
                to="+15550100060",
                at=datetime(2026, 11, 23, 15, tzinfo=UTC),
                reason="help",
                customer_id="C-60",
            ),
        )
    await forged.close()
    assert await providers.store.rows("SELECT key FROM payments") == []
    assert await providers.store.rows("SELECT key FROM calls") == []


async def test_the_worker_sends_email_over_smtp_when_configured(
    bare_env: WorkflowEnvironment,
    smtp: tuple[Inbox, SmtpConfig],
    tmp_path: Path,
    task_queue: str,
) -> None:
    inbox, config = smtp
    settings = Settings(
        data_dir=tmp_path,
        email="smtp",
        web_secret=new_webhook_secret(),
        smtp_host=config.host,
        smtp_port=config.port,
        smtp_starttls=False,
        smtp_username="makegood",
        smtp_password="s3cret",
    )
    async with (
        configured_adapters(settings) as adapters,
        build_worker(bare_env.client, task_queue, adapters.activities()),
    ):
        store = adapters.outcomes.store  # type: ignore[attr-defined]
        case = await start(
            bare_env.client, store, ticket("s4-wrong-size.json"), task_queue, env=bare_env
        )
        await case.answer("substitute", "substitute", value="SHORTS-NAVY-M")
        await case.until(lambda s: s.stage == "follow_up", "follow-up")
    subjects = [m["Subject"] for m in inbox.received]
    assert subjects == ["We are sorry", "A question about your case", "Confirmation: what we did"]
    assert {m["To"] for m in inbox.received} == {"jonas.berg@example.com"}
    assert len({m["Message-ID"] for m in inbox.received}) == 3


async def test_smtp_starttls_with_a_private_ca(tmp_path: Path, store: LocalStore) -> None:
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    inbox, port = Inbox(), free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=server_ctx,
        require_starttls=True,
        authenticator=_authenticator,
        auth_required=True,
    )
    controller.start()
    try:
        config = SmtpConfig(
            host="127.0.0.1",
            port=port,
            starttls=True,
            username="makegood",
            password="s3cret",
            ca_file=str(ca_file),
            timeout_s=5,
        )
        await SmtpNotifier(config, store).send("case-T-1:ack:email", email("ack:email"))
        untrusted = config.model_copy(update={"ca_file": None})
        with pytest.raises(TransientProviderError):
            await SmtpNotifier(untrusted, store).send("case-T-1:ask:email", email("ask:email"))
    finally:
        controller.stop()
    assert [m["Message-ID"] for m in inbox.received] == [message_id("case-T-1:ack:email")]
