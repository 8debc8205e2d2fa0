"""One Notifier per channel: email over SMTP, SMS and push over HTTP, or all local."""

from __future__ import annotations

from makegood.adapters.base import Notifier
from makegood.domain.provider import MessageReceipt, MessageRequest


class ChannelRouter:
    def __init__(self, email: Notifier, sms: Notifier, app: Notifier) -> None:
        self.by_channel = {"email": email, "sms": sms, "app": app}

    async def send(self, key: str, req: MessageRequest) -> MessageReceipt:
        return await self.by_channel[req.channel].send(key, req)
