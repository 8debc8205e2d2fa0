"""Email over SMTP (aiosmtplib): STARTTLS or TLS and auth as configured.

SMTP has no idempotency keys, so the adapter keeps its own: each key is recorded in the
local store with the send, and a retried activity finds it there instead of sending again.
The Message-ID is derived from the key too, so in the one window no store can close (sent,
then the process died before recording it) the duplicate carries the same Message-ID and
mail clients show it once.
"""

from __future__ import annotations

import hashlib
import ssl
from datetime import UTC, datetime
from email.message import EmailMessage

import aiosmtplib
import aiosqlite
from pydantic import BaseModel, SecretStr

from makegood.adapters.base import PermanentProviderError, TransientProviderError
from makegood.adapters.local.store import LocalStore
from makegood.domain.ids import case_of
from makegood.domain.provider import MessageReceipt, MessageRequest


class SmtpConfig(BaseModel):
    host: str = "localhost"
    port: int = 25
    sender: str = "Makegood <care@makegood.example.com>"
    starttls: bool = False
    tls: bool = False
    username: str | None = None
    password: SecretStr | None = None
    timeout_s: float = 20.0
    ca_file: str | None = None  # a private CA to trust, beyond the system's


def tls_context(config: SmtpConfig) -> ssl.SSLContext | None:
    if not (config.starttls or config.tls):
        return None
    return ssl.create_default_context(cafile=config.ca_file)


def message_id(key: str) -> str:
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@makegood>"


def classify(err: Exception) -> Exception:
    """4xx answers and lost connections are worth another try; 5xx answers are final."""
    code = getattr(err, "code", None)
    if isinstance(err, aiosmtplib.SMTPRecipientsRefused) and err.recipients:
        code = err.recipients[0].code
    text = getattr(err, "message", None) or str(err)
    if isinstance(code, int) and 500 <= code < 600:
        return PermanentProviderError(f"SMTP {code}: {text}", code=f"smtp_{code}")
    return TransientProviderError(
        f"SMTP {code or type(err).__name__}: {text}", code=f"smtp_{code or 'connection'}"
    )


class SmtpNotifier:
    def __init__(self, config: SmtpConfig, store: LocalStore) -> None:
        self.config, self.store = config, store

    async def send(self, key: str, req: MessageRequest) -> MessageReceipt:
        if req.channel != "email":
            raise PermanentProviderError(
                f"SMTP sends email, not {req.channel}", code="wrong_channel"
            )

        async def effect(conn: aiosqlite.Connection) -> MessageReceipt:
            msg = EmailMessage()
            msg["From"], msg["To"], msg["Subject"] = self.config.sender, req.to, req.subject
            msg["Message-ID"] = message_id(key)
            msg["X-Makegood-Key"] = key
            msg.set_content(req.body)
            c = self.config
            try:
                await aiosmtplib.send(
                    msg,
                    hostname=c.host,
                    port=c.port,
                    start_tls=c.starttls,
                    use_tls=c.tls,
                    username=c.username,
                    password=c.password.get_secret_value() if c.password else None,
                    timeout=c.timeout_s,
                    tls_context=tls_context(c),
                )
            except (aiosmtplib.SMTPException, OSError) as err:
                raise classify(err) from err
            receipt = MessageReceipt(
                message_id=message_id(key),
                idempotency_key=key,
                channel="email",
                to=req.to,
                sent_at=datetime.now(UTC),
            )
            await conn.execute(
                "INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    receipt.message_id,
                    key,
                    case_of(key),
                    "email",
                    req.to,
                    req.subject,
                    req.body,
                    receipt.sent_at.isoformat(),
                ),
            )
            return receipt

        return await self.store.once(key, "send", req, MessageReceipt, effect)
