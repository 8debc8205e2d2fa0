"""Customers' texted replies (the SMS provider's signed inbound webhook) answer the question
last sent to their number: "1"/"2" as the message lists the answers, or the answer's word."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from standardwebhooks import Webhook

from makegood.credentials import new_webhook_secret
from makegood.domain import plain
from tests.deployment import SMS_SECRET, Deployment, deployed
from tests.harness import TICKETS

CASE = "case-T-1001"
PHONE = "+15550100042"


def test_a_reply_names_an_answer_by_number_code_or_words() -> None:
    choices = ["found", "not_found"]
    for said, meant in (
        ("1", "found"),
        (" 2 ", "not_found"),
        ("NOT FOUND", "not_found"),
        ("not_found.", "not_found"),
        ("No, I can't find it!", "not_found"),
        ("yes, i  found it", "found"),
    ):
        assert plain.reply_choice(said, choices) == meant, said
    for unclear in ("3", "0", "-1", "maybe", "", "found it i think"):
        assert plain.reply_choice(unclear, choices) is None, unclear


async def texted(
    http: httpx.AsyncClient,
    text: str,
    *,
    phone: str = PHONE,
    msg_id: str | None = None,
    secret: str = SMS_SECRET,
) -> httpx.Response:
    raw = json.dumps({"from": phone, "text": text})
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    at = datetime.now(UTC)
    return await http.post(
        "/callbacks/sms",
        content=raw,
        headers={
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": Webhook(secret).sign(msg_id, at, raw),
        },
    )


async def sms_sent(d: Deployment, question: str) -> dict[str, Any]:
    async with asyncio.timeout(30):
        while True:
            rows = await d.rows(
                "SELECT recipient, body FROM messages WHERE key = ?", f"{CASE}:ask:{question}:sms"
            )
            if rows:
                return rows[0]
            await asyncio.sleep(0.05)


async def test_a_texted_reply_answers_the_question_sent_to_that_number(tmp_path: Path) -> None:
    ticket = json.loads((TICKETS / "s1-missing-car.json").read_text())
    ticket["customer"] |= {"phone": PHONE, "preferred_channel": "sms"}
    async with deployed(tmp_path) as d, httpx.AsyncClient(base_url=d.api_url) as http:
        await d.cli("open", "-", stdin=json.dumps(ticket))
        sent = await sms_sent(d, "locate-CAR-1-1")
        assert sent["recipient"] == PHONE
        assert plain.SMS_REPLY_LINE in sent["body"] and f"{d.api_url}/c/" in sent["body"]

        forged = await texted(http, "2", secret=new_webhook_secret())
        assert forged.status_code == 401
        stranger = await texted(http, "2", phone="+15550109999")
        assert stranger.status_code == 202
        assert stranger.json() == {
            "delivered": False,
            "note": "no question waits for a reply from this number",
        }
        unclear = await texted(http, "maybe")
        assert unclear.json()["delivered"] is False
        assert (
            "names none of the answers to locate-CAR-1-1 (found, not_found)"
            in (unclear.json()["note"])
        )

        first = await texted(http, "2", msg_id="msg_reply_1")
        assert first.json() == {
            "delivered": True,
            "note": f"{CASE}: locate-CAR-1-1 answered not_found",
        }
        again = await texted(http, "2", msg_id="msg_reply_1")  # the provider's retry
        assert again.status_code == 409

        await sms_sent(d, "locate-CAR-1-2")
        worded = await texted(http, "No, I can't find it")
        assert worded.json()["delivered"] is True
        status = await d.question(CASE, "pickup-1")
        answers = [(e.detail, e.by) for e in status.events if e.kind == "answer"]
        assert answers == [
            ("locate-CAR-1-1: not_found", "customer:M-42"),
            ("locate-CAR-1-2: not_found", "customer:M-42"),
        ]
        # The number is in the index only as a keyed pseudonym.
        stored = await asyncio.to_thread(
            lambda: b"".join(p.read_bytes() for p in tmp_path.glob("cases.sqlite*"))
        )  # the file and its write-ahead log
        assert b"15550100042" not in stored
