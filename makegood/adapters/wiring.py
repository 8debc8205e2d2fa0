"""The adapters a configuration asks for: `local` ones over SQLite, or SMTP and HTTP."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from makegood.activities.calls import all_activities
from makegood.activities.receipts import ReceiptActivities
from makegood.adapters.base import (
    Notifier,
    OutcomeStore,
    Payments,
    ProductControl,
    Replies,
    Telephony,
)
from makegood.adapters.local.providers import (
    LocalNotifier,
    LocalOutcomes,
    LocalPayments,
    LocalProductControl,
    LocalTelephony,
)
from makegood.adapters.local.store import LocalStore
from makegood.adapters.real.http import (
    HttpNotifier,
    HttpPayments,
    HttpProductControl,
    HttpProvider,
    HttpTelephony,
)
from makegood.adapters.real.smtp import SmtpConfig, SmtpNotifier
from makegood.adapters.receipt_index import receipt_index
from makegood.adapters.routing import ChannelRouter
from makegood.domain.links import Links
from makegood.secure import check_provider_secret, check_web_secret
from makegood.settings import Settings


@dataclass
class Adapters:
    notifier: Notifier
    payments: Payments
    product: ProductControl
    telephony: Telephony
    outcomes: OutcomeStore
    receipts: ReceiptActivities  # Makegood's own receipt index and store, not a provider
    links: Links | None = None  # the customer's links in the questions they are sent
    replies: Replies | None = None  # where SMS questions are noted for the texted replies

    def activities(self) -> list[object]:
        return [
            *all_activities(
                self.notifier,
                self.payments,
                self.product,
                self.telephony,
                self.outcomes,
                self.links,
                self.replies,
            ),
            self.receipts.register_claim,
        ]


def _http_provider(settings: Settings, url: str) -> HttpProvider:
    check_provider_secret(settings)  # never sign real requests with the public dev secret
    return HttpProvider(
        url,
        settings.provider_secret.get_secret_value(),
        timeout_s=settings.provider_timeout_s,
    )


@contextlib.asynccontextmanager
async def configured_adapters(settings: Settings) -> AsyncIterator[Adapters]:
    """The adapters the settings ask for: `local` ones over SQLite, or SMTP and HTTP."""
    check_web_secret(settings)  # never sign customers' links with the public dev secret
    store = await LocalStore(settings.store_path).open()
    clients: list[HttpProvider] = []

    def http(url: str) -> HttpProvider:
        clients.append(_http_provider(settings, url))
        return clients[-1]

    try:
        await store.seed(settings.seed_data())
        local = LocalNotifier(store)
        email = (
            SmtpNotifier(
                SmtpConfig(
                    host=settings.smtp_host,
                    port=settings.smtp_port,
                    sender=settings.smtp_sender,
                    starttls=settings.smtp_starttls,
                    tls=settings.smtp_tls,
                    username=settings.smtp_username,
                    password=settings.smtp_password,
                    ca_file=settings.smtp_ca_file,
                ),
                store,
            )
            if settings.email == "smtp"
            else local
        )
        sms = HttpNotifier(http(settings.sms_url)) if settings.sms == "http" else local
        push = HttpNotifier(http(settings.push_url)) if settings.push == "http" else local
        yield Adapters(
            ChannelRouter(email=email, sms=sms, app=push),
            HttpPayments(http(settings.payments_url))
            if settings.payments == "http"
            else LocalPayments(store),
            HttpProductControl(http(settings.product_url))
            if settings.product == "http"
            else LocalProductControl(store),
            HttpTelephony(http(settings.telephony_url))
            if settings.telephony == "http"
            else LocalTelephony(store),
            LocalOutcomes(store),
            ReceiptActivities(
                receipt_index(settings.receipt_index_path, settings.database_url),
                settings.receipts(),
            ),
            settings.links(),
        )
    finally:
        for client in clients:
            await client.close()
        await store.close()


@contextlib.asynccontextmanager
async def configured_payments(settings: Settings) -> AsyncIterator[Payments]:
    """The payments adapter alone, as the worker's would be: for reading its ledger.

    Unlike `configured_adapters` it seeds nothing and opens nothing else: with
    `MAKEGOOD_PAYMENTS=http` it does not touch the local SQLite file at all.
    """
    if settings.payments == "http":
        provider = _http_provider(settings, settings.payments_url)
        try:
            yield HttpPayments(provider)
        finally:
            await provider.close()
        return
    store = await LocalStore(settings.store_path).open()
    try:
        yield LocalPayments(store)
    finally:
        await store.close()
