"""Secure by default: settings a process refuses to start with, before it starts anything.

The public development credentials (the README's dev tokens, the repository's dev secrets) are
accepted only when nobody else can use them: every listener of the process is on loopback (the
intake API; for `makegood dev` also the Temporal dev server and its web UI) and no provider is
real (MAKEGOOD_EMAIL=smtp, or any MAKEGOOD_<provider>=http: then cases reach real people and
real money, and an API on loopback may still sit behind a reverse proxy). A process checks the
credentials it uses: the API its tokens and the callbacks' secrets, a worker (and `makegood
reconcile`) the provider secret that signs requests to HTTP providers.

Always refused, wherever the process listens: tokens in clear text in MAKEGOOD_API_TOKENS,
the retired MAKEGOOD_WEBHOOK_SECRET, a webhook secret that is not one, and one secret for
both the telephony and the payment provider (either could forge the other's events).

Messages name the setting and what to do; they never show a secret or a token.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import SecretStr

from makegood.connection import TemporalConnection
from makegood.credentials import (
    DEV_TOKENS,
    MIN_WEB_SECRET,
    TokenTable,
    is_public,
    webhook_secret_problem,
)
from makegood.loopback import is_loopback
from makegood.settings import Settings

PROVIDERS = ("email", "sms", "push", "payments", "product", "telephony")
RENAMED = {
    "MAKEGOOD_WEBHOOK_SECRET": (
        "MAKEGOOD_TELEPHONY_WEBHOOK_SECRET",
        "MAKEGOOD_PAYMENTS_WEBHOOK_SECRET",
    ),
}


class UnsafeSettings(SystemExit):
    """Settings a process must not run with: it stops before starting or connecting anything."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(
            "makegood: settings refused, nothing was started:\n  " + "\n  ".join(problems)
        )
        self.problems = problems


@dataclass(frozen=True)
class Listener:
    """A socket the process will listen on, and the setting that says where."""

    what: str
    host: str
    port: int
    setting: str

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host or "0.0.0.0"
        return f"{self.what} listens on {host}:{self.port} ({self.setting})"


def listeners(
    settings: Settings, connection: TemporalConnection | None, *, api: bool, embedded: bool
) -> list[Listener]:
    """Where this process will listen: the API, and for `makegood dev` the dev server and UI."""
    found = []
    if api:
        found.append(
            Listener("the intake API", settings.api_host, settings.api_port, "MAKEGOOD_API_HOST")
        )
    if embedded and connection is not None:
        where = "TEMPORAL_ADDRESS"  # the dev server and its UI listen on the address's host
        found.append(Listener("the Temporal dev server", connection.host, connection.port, where))
        found.append(Listener("its web UI", connection.host, settings.ui_port, where))
    return found


def real_providers(settings: Settings) -> list[str]:
    return [
        f"MAKEGOOD_{name.upper()}={getattr(settings, name)}"
        for name in PROVIDERS
        if getattr(settings, name) != "local"
    ]


def http_providers(settings: Settings) -> list[str]:
    return [p for p in real_providers(settings) if p.endswith("=http")]


def problems(settings: Settings, at: Sequence[Listener], *, api: bool) -> list[str]:
    """Everything wrong with these settings for a process listening `at`, serving the API or
    not; empty if it may start."""
    found = _api_problems(settings) if api else []
    exposed = [str(listener) for listener in at if not is_loopback(listener.host)]
    if real := real_providers(settings):
        exposed.append(f"real providers are configured ({', '.join(real)})")
    if exposed and (public := _public_api_credentials(settings) if api else []):
        found += [
            "the public dev credentials are accepted only when every listener is on loopback "
            f"and every provider is local, but {'; and '.join(exposed)}:",
            *public,
        ]
    return found + web_secret_problems(settings, exposed) + provider_secret_problems(settings)


def web_secret_problems(settings: Settings, exposed: Sequence[str]) -> list[str]:
    """MAKEGOOD_WEB_SECRET signs console sessions and customers' links: too short is refused
    anywhere, the public dev secret wherever anyone but this machine could use what it signs
    (`exposed`: the listeners off loopback and the real providers)."""
    secret = settings.web_secret.get_secret_value()
    if len(secret.strip()) < MIN_WEB_SECRET:
        return [
            f"MAKEGOOD_WEB_SECRET: too short: at least {MIN_WEB_SECRET} characters are needed "
            "(`makegood token secret` makes one)"
        ]
    if exposed and is_public(secret):
        return [
            f"MAKEGOOD_WEB_SECRET {_dev(settings, 'web_secret')}, but {'; and '.join(exposed)}: "
            "anyone could forge a customer's link or a console session; set a secret the API "
            "and the workers alone share (`makegood token secret` makes one)"
        ]
    return []


def check_web_secret(settings: Settings) -> None:
    """For a worker: it signs the links in messages that real providers deliver."""
    if found := web_secret_problems(settings, real_providers(settings)):
        raise UnsafeSettings(found)


def check(settings: Settings, at: Sequence[Listener], *, api: bool) -> None:
    if found := problems(settings, at, api=api):
        raise UnsafeSettings(found)


def provider_secret_problems(settings: Settings) -> list[str]:
    """An empty or public provider secret signing requests to HTTP providers: refused
    wherever the process listens, as anyone could sign requests to them as Makegood."""
    http = http_providers(settings)
    if not http:
        return []
    secret = settings.provider_secret.get_secret_value()
    if not secret.strip():
        return [f"MAKEGOOD_PROVIDER_SECRET: empty; it signs the requests to {', '.join(http)}"]
    if not is_public(secret):
        return []
    return [
        f"MAKEGOOD_PROVIDER_SECRET {_dev(settings, 'provider_secret')} to sign the requests "
        f"to real providers ({', '.join(http)}); set a secret shared with those providers "
        "alone (`makegood token secret` makes one)"
    ]


def check_provider_secret(settings: Settings) -> None:
    if found := provider_secret_problems(settings):
        raise UnsafeSettings(found)


def _dev(settings: Settings, field: str) -> str:
    if field in settings.model_fields_set:
        return "is a public dev secret of the repository"
    return "is not set, so the repository's public dev secret would be used"


def _secrets(settings: Settings) -> list[tuple[str, str, SecretStr]]:
    """The API's secrets: field, variable, value."""
    return [
        ("zendesk_secret", "MAKEGOOD_ZENDESK_SECRET", settings.zendesk_secret),
        (
            "telephony_webhook_secret",
            "MAKEGOOD_TELEPHONY_WEBHOOK_SECRET",
            settings.telephony_webhook_secret,
        ),
        (
            "payments_webhook_secret",
            "MAKEGOOD_PAYMENTS_WEBHOOK_SECRET",
            settings.payments_webhook_secret,
        ),
        ("sms_webhook_secret", "MAKEGOOD_SMS_WEBHOOK_SECRET", settings.sms_webhook_secret),
    ]


def _api_problems(settings: Settings) -> list[str]:
    """Refused wherever the API listens: these settings cannot be meant."""
    found = list(TokenTable.parse(settings.api_tokens).problems)
    if settings.renamed_webhook_secret is not None:
        for old, new in RENAMED.items():
            found.append(
                f"{old} was split in two: set {' and '.join(new)} instead, one secret per "
                "provider, so that neither can forge the other's events"
            )
    for field, variable, value in _secrets(settings):
        secret = value.get_secret_value()
        if not secret.strip():
            found.append(f"{variable}: empty")
        elif field != "zendesk_secret" and (problem := webhook_secret_problem(secret)):
            found.append(f"{variable}: {problem}")
    providers = [(v, value) for f, v, value in _secrets(settings) if f != "zendesk_secret"]
    for n, (first, one) in enumerate(providers):
        for second, other in providers[n + 1 :]:
            if hmac.compare_digest(
                one.get_secret_value().encode(), other.get_secret_value().encode()
            ):
                found.append(
                    f"{first} and {second} are the same secret: either provider could forge "
                    "the other's events; give each its own"
                )
    return found


def _public_api_credentials(settings: Settings) -> list[str]:
    found = []
    dev = TokenTable.parse(settings.api_tokens).dev_actors()
    if "api_tokens" not in settings.model_fields_set:
        found.append(
            "MAKEGOOD_API_TOKENS is not set, so the README's dev tokens "
            f"({', '.join(DEV_TOKENS)}) would be accepted; make a token for each person or "
            "service with `makegood token new ROLE:ID` and set MAKEGOOD_API_TOKENS to the "
            "entries it prints"
        )
    elif dev:
        found.append(
            f"MAKEGOOD_API_TOKENS holds the README's dev token of {', '.join(map(str, dev))}; "
            "remove it, and make your own with `makegood token new ROLE:ID`"
        )
    fixes = {
        "zendesk_secret": "set the signing secret of your Zendesk webhook",
        "telephony_webhook_secret": "set the whsec_ secret your telephony provider signs its "
        "status callbacks with",
        "payments_webhook_secret": "set the whsec_ secret your payment provider signs its "
        "events with",
        "sms_webhook_secret": "set the whsec_ secret your SMS provider signs its inbound "
        "replies with",
    }
    for field, variable, value in _secrets(settings):
        if is_public(value.get_secret_value()):
            found.append(f"{variable} {_dev(settings, field)}; {fixes[field]}")
    return found
