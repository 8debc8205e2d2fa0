"""No secret in any log line or answer: `makegood dev` and `makegood api` on every interface,
with real credentials and payload keys, real SMTP (with a password) and an HTTP payment
provider (signed with the provider secret), logging at DEBUG, get bad and good requests and
run a case to its end; then everything they logged and answered is searched for every secret
and token."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from standardwebhooks import Webhook

from makegood.adapters.local.store import LocalStore
from makegood.api.auth import zendesk_signature
from makegood.credentials import new_token, new_webhook_secret, token_hash
from tests.api_harness import free_port
from tests.harness import ROOT, temporal_env
from tests.providers import Providers, serving

CASE = "case-ZD-4711"


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@dataclass
class Secrets:
    agent: str = field(default_factory=new_token)
    auditor: str = field(default_factory=new_token)
    zendesk: str = field(default_factory=new_token)
    telephony: str = field(default_factory=new_webhook_secret)
    payments: str = field(default_factory=new_webhook_secret)
    sms: str = field(default_factory=new_webhook_secret)
    provider: str = field(default_factory=new_token)
    web: str = field(default_factory=new_token)
    smtp_password: str = field(default_factory=new_token)
    guessed: str = field(default_factory=new_token)  # a caller's wrong token: not logged either
    payload_key: str = field(default_factory=lambda: _b64(secrets.token_bytes(32)))
    pseudonym_key: str = field(default_factory=lambda: _b64(secrets.token_bytes(32)))

    def every(self) -> dict[str, str]:
        """Each secret, and the key inside each whsec_ secret."""
        found = dict(vars(self))
        for name in ("telephony", "payments", "sms"):
            found[f"{name} key"] = found[name].removeprefix("whsec_")
        return found


class Inbox:
    def __init__(self, password: str) -> None:
        self.password = password.encode()
        self.received: list[Message] = []

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        self.received.append(message_from_bytes(envelope.content))  # type: ignore[arg-type]
        return "250 OK"

    def authenticate(self, *args: Any) -> AuthResult:
        auth = args[-1]
        return AuthResult(
            success=isinstance(auth, LoginPassword) and auth.password == self.password
        )


@contextlib.contextmanager
def smtp_server(password: str) -> Iterator[tuple[Inbox, int]]:
    """An SMTP server that takes mail only after AUTH with this password."""
    box, port = Inbox(password), free_port()
    controller = Controller(
        box,
        hostname="127.0.0.1",
        port=port,
        authenticator=box.authenticate,
        auth_require_tls=False,
        auth_required=True,
    )
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


@dataclass
class Stack:
    secrets: Secrets
    urls: list[str]
    providers: Providers
    inbox: Inbox
    logs: list[Path]
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)

    async def stop(self) -> None:
        """Ctrl-C to every process, and wait for each to finish its logs."""
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                await asyncio.to_thread(proc.wait, 30)

    async def call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async with httpx.AsyncClient(timeout=30) as http:
            response = await http.request(method, url, **kwargs)
        self.answers.append(f"{response.status_code} {response.headers} {response.text}")
        return response

    def bearer(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    async def signed(self, url: str, body: dict[str, Any], secret: str) -> httpx.Response:
        raw, msg_id = json.dumps(body), f"msg_{uuid.uuid4().hex}"
        at = datetime.now(UTC)
        headers = {
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": Webhook(secret).sign(msg_id, at, raw),
        }
        return await self.call("POST", url, content=raw, headers=headers)

    async def zendesk(self, url: str, secret: str, at: datetime | None = None) -> httpx.Response:
        raw = json.dumps(ZENDESK_TICKET).encode()
        stamp = (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
        headers = {
            "content-type": "application/json",
            "x-zendesk-webhook-signature": zendesk_signature(secret, stamp, raw),
            "x-zendesk-webhook-signature-timestamp": stamp,
        }
        return await self.call("POST", f"{url}/webhooks/zendesk", content=raw, headers=headers)


ZENDESK_TICKET = {
    "ticket": {
        "id": 4711,
        "subject": "Wrong drink",
        "description": "Oat flat white came as a latte.",
        "requester": {"id": 991, "name": "Mia Chen", "email": "mia@example.com"},
        "custom_fields": {
            "incident_kind": "wrong_order",
            "reference": "ORD-77",
            "paid_amount": "4.80",
            "currency": "USD",
            "item": "oat-flat-white",
        },
    }
}


def start(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:  # a file, not a pipe: DEBUG logs must never block the process
        return subprocess.Popen(
            [sys.executable, str(ROOT / "starter.py"), *args],
            env=env,
            cwd=log.parent,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient(timeout=1) as http:
        for _ in range(600):
            assert proc.poll() is None, f"{url} exited with {proc.returncode}"
            try:
                if (await http.get(f"{url}/ready")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"{url} never became ready")


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    secrets = Secrets()
    books = await LocalStore(tmp_path / "provider.sqlite").open()
    temporal, dev_api, api = free_port(), free_port(), free_port()
    env = {k: v for k, v in temporal_env(f"0.0.0.0:{temporal}").items() if "MAKEGOOD_" not in k}
    env |= {
        "MAKEGOOD_API_HOST": "0.0.0.0",
        "MAKEGOOD_API_TOKENS": json.dumps(
            {token_hash(secrets.agent): "agent:sam", token_hash(secrets.auditor): "auditor:ann"}
        ),
        "MAKEGOOD_ZENDESK_SECRET": secrets.zendesk,
        "MAKEGOOD_TELEPHONY_WEBHOOK_SECRET": secrets.telephony,
        "MAKEGOOD_PAYMENTS_WEBHOOK_SECRET": secrets.payments,
        "MAKEGOOD_SMS_WEBHOOK_SECRET": secrets.sms,
        "MAKEGOOD_PROVIDER_SECRET": secrets.provider,
        "MAKEGOOD_WEB_SECRET": secrets.web,
        "MAKEGOOD_EMAIL": "smtp",
        "MAKEGOOD_SMTP_HOST": "127.0.0.1",
        "MAKEGOOD_SMTP_STARTTLS": "false",
        "MAKEGOOD_SMTP_USERNAME": "makegood",
        "MAKEGOOD_SMTP_PASSWORD": secrets.smtp_password,
        "MAKEGOOD_PAYMENTS": "http",
        "MAKEGOOD_PAYLOAD_KEYS": json.dumps({"k1": secrets.payload_key}),
        "MAKEGOOD_PSEUDONYM_KEY": secrets.pseudonym_key,
        "MAKEGOOD_LOG_LEVEL": "DEBUG",
        "MAKEGOOD_DATA_DIR": str(tmp_path / "data"),
        "MAKEGOOD_UI_PORT": str(free_port()),
    }
    async with contextlib.AsyncExitStack() as resources:
        resources.push_async_callback(books.close)
        box, smtp_port = resources.enter_context(smtp_server(secrets.smtp_password))
        providers = await resources.enter_async_context(serving(books, secrets.provider))
        env |= {"MAKEGOOD_SMTP_PORT": str(smtp_port), "MAKEGOOD_PAYMENTS_URL": providers.url}
        running = Stack(secrets, [], providers, box, [tmp_path / "dev.log", tmp_path / "api.log"])
        resources.push_async_callback(running.stop)  # before the servers it talks to
        for n, (command, port, fmt) in enumerate(
            [("dev", dev_api, "console"), ("api", api, "json")]
        ):
            more = {"MAKEGOOD_API_PORT": str(port), "MAKEGOOD_LOG_FORMAT": fmt}
            running.procs.append(start({**env, **more}, running.logs[n], command))
            running.urls.append(f"http://127.0.0.1:{port}")
            await ready(running.urls[-1], running.procs[-1])
        yield running


async def test_no_secret_in_any_log_line_or_answer(stack: Stack) -> None:
    s = stack.secrets
    for url in stack.urls:
        cases = f"{url}/cases"
        assert (await stack.call("GET", cases)).status_code == 401
        for wrong in (s.guessed, "dev-agent-token", token_hash(s.agent)):
            assert (await stack.call("GET", cases, headers=stack.bearer(wrong))).status_code == 401
        assert (await stack.call("GET", cases, headers=stack.bearer(s.auditor))).status_code == 200
        bad = await stack.call("POST", cases, headers=stack.bearer(s.agent), json={"id": "?"})
        assert bad.status_code == 422
        assert (await stack.zendesk(url, s.guessed)).status_code == 401
        call = {"case_id": "case-nope", "call_id": "call_1", "status": "completed"}
        pay = {"type": "payment.settled", "idempotency_key": "case-nope:refund"}
        telephony, payments = f"{url}/callbacks/telephony", f"{url}/callbacks/payments"
        assert (await stack.signed(telephony, call, s.payments)).status_code == 401
        assert (await stack.signed(payments, pay, s.telephony)).status_code == 401
        assert (await stack.signed(telephony, call, s.telephony)).status_code == 404
        assert (await stack.signed(payments, pay, s.payments)).status_code == 404

    # A case through both doors, run to its end with real SMTP and the HTTP payment provider.
    assert (await stack.zendesk(stack.urls[0], s.zendesk)).status_code == 201
    # The ticket again, as another delivery (the very same bytes would be a replay: 409, as the
    # processes share the replay guard): the same case.
    later = datetime.now(UTC) + timedelta(seconds=1)
    assert (await stack.zendesk(stack.urls[1], s.zendesk, at=later)).status_code == 200
    for _ in range(600):
        status = await stack.call(
            "GET", f"{stack.urls[1]}/cases/{CASE}", headers=stack.bearer(s.auditor)
        )
        if status.status_code == 200 and status.json()["stage"] == "closed":
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError(f"{CASE} never closed")
    refunds = await stack.providers.store.rows("SELECT key, amount FROM payments")
    assert refunds == [{"key": f"{CASE}:refund", "amount": "4.80"}]  # signed, and accepted
    assert {m["To"] for m in stack.inbox.received} == {"mia@example.com"}  # after SMTP AUTH

    await stack.stop()
    assert [proc.returncode for proc in stack.procs] == [0, 0]
    logs = [path.read_text() for path in stack.logs]
    # What is searched is the real output: the case as each process logged it, DEBUG included.
    assert "case_opened" in logs[0] and "message_sent" in logs[0] and "[debug" in logs[0]
    assert '"event": "duplicate_ticket"' in logs[1] and '"event": "api_started"' in logs[1]
    for name, secret in s.every().items():
        for where, text in (("dev log", logs[0]), ("api log", logs[1])):
            assert secret not in text, f"the {name} secret is in the {where}"
        assert not [a for a in stack.answers if secret in a], f"the {name} secret was answered"


@pytest.mark.parametrize("fmt", ["console", "json"])
def test_logged_tracebacks_show_no_local_variables(fmt: str) -> None:
    secret = new_token()
    program = (
        "import os, structlog\n"
        "from makegood import logsetup\n"
        f"logsetup.configure({fmt!r}, 'INFO')\n"
        "def verify(secret):\n"
        "    raise ValueError('signature rejected')\n"
        "try:\n"
        "    verify(os.environ['SECRET'])\n"
        "except ValueError:\n"
        "    structlog.get_logger('makegood.api').exception('verification_failed')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program],
        env={**temporal_env("127.0.0.1:1"), "SECRET": secret},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    logged = done.stdout + done.stderr
    assert "verification_failed" in logged and "ValueError: signature rejected" in logged
    assert secret not in logged
