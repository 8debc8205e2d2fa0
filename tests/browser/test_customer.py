"""The customer's own page in real Chromium, on a phone-sized screen: S1's member answers the
horn question and sends a taxi receipt from the links in their emails (read from the local
email provider's ledger); a reused or forged link changes nothing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import expect

from makegood.cases import case_status
from makegood.privacy.codec import decode_history
from tests.browser.chromium import PHONE, check_page, chromium
from tests.deployment import Deployment, deployed
from tests.harness import ROOT, TICKETS

CASE = "case-T-1001"


@pytest.fixture
async def deployment(tmp_path: Path) -> AsyncIterator[Deployment]:
    async with deployed(tmp_path) as dep:
        yield dep


async def emailed_link(d: Deployment, question: str) -> str:
    """The link in the email that asks `question`, once the worker has sent it."""
    async with asyncio.timeout(30):
        while True:
            rows = await d.rows(
                "SELECT body FROM messages WHERE key = ?", f"{CASE}:ask:{question}:email"
            )
            if rows:
                return str(rows[0]["body"]).strip().splitlines()[-1]
            await asyncio.sleep(0.05)


async def test_s1_customer_answers_and_sends_a_receipt_from_their_links(
    deployment: Deployment,
) -> None:
    d = deployment
    reported = time.perf_counter()
    await d.ok("open", str(TICKETS / "s1-missing-car.json"))
    horn = await emailed_link(d, "locate-CAR-1-1")
    emailed = time.perf_counter()
    assert horn.startswith(f"{d.api_url}/c/")
    token = horn.rpartition("/c/")[2]
    # The link was added by the activity: it is nowhere in the case's history, decoded or not.
    history = await d.client.get_workflow_handle(CASE).fetch_history()
    decoded = await decode_history(history, d.client.data_converter)
    assert token not in history.to_json() and token not in decoded.to_json()

    async with chromium() as browser:
        context = await browser.new_context(viewport=PHONE)  # type: ignore[arg-type]
        page = await context.new_page()
        await page.goto(horn)
        await expect(page.locator("h1")).to_have_text("Your case T-1001")
        await expect(page.locator("section.ask")).to_contain_text("sounded the horn of CAR-1")
        await expect(
            page.get_by_text("The car you reserved was not where it should")
        ).to_be_visible()
        await check_page(page, "customer")
        tapped = time.perf_counter()
        await page.get_by_role("button", name="No, I can't find it").click()
        await expect(page.locator(".done")).to_have_text("Thank you: we have your answer.")
        answered = time.perf_counter()
        # The thanks come after the case took the answer (an update, not a message queued).
        status = await case_status(d.client, CASE)
        took = [e for e in status.events if e.kind == "answer"]
        assert [(e.detail, e.by) for e in took] == [("locate-CAR-1-1: not_found", "customer:M-42")]
        print(
            f"\nticket to email {1000 * (emailed - reported):.0f} ms; tap to the answer in the "
            f"case {1000 * (answered - tapped):.0f} ms"
        )
        await expect(page.locator("section.ask")).to_have_count(0)
        await check_page(page, "customer-thanks")

        # The same link again: its question has closed, so it shows and changes nothing.
        again = await page.goto(horn)
        assert again is not None and again.status == 410
        await expect(page.locator("main")).to_contain_text("This link has expired")
        await expect(page.locator("main")).not_to_contain_text("CAR-1")
        await check_page(page, "customer-expired")
        replayed = await context.request.post(f"{horn}/answer", form={"choice": "found"})
        assert replayed.status == 410
        forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
        refused = await context.request.post(
            f"{d.api_url}/c/{forged}/answer", form={"choice": "found"}
        )
        assert refused.status == 404 and "This link is not valid" in await refused.text()
        status = await case_status(d.client, CASE)
        assert [e.kind for e in status.events].count("answer") == 1

        # The next question, from its own email: a taxi receipt, then the answer.
        await page.goto(await emailed_link(d, "locate-CAR-1-2"))
        await page.get_by_role("button", name="No, I can't find it").click()
        await expect(page.locator(".done")).to_be_visible()
        await page.goto(await emailed_link(d, "pickup-1"))
        await page.get_by_label("Photo or PDF of the receipt").set_input_files(
            ROOT / "examples/receipts/taxi-1.pdf"
        )
        await page.get_by_label("Amount on the receipt (USD)").fill("18.50")
        await page.get_by_label("What it was for").fill("Taxi to the second car")
        await page.get_by_role("button", name="Send the receipt").click()
        await expect(page.locator(".done")).to_have_text(
            "Thank you: we have your receipt for 18.50 USD."
        )
        await expect(
            page.get_by_text("We have your receipt: Taxi to the second car")
        ).to_be_visible()
        await check_page(page, "customer-receipt")
        # The question is still open: the customer answers it on the same page.
        await page.get_by_role("button", name="No, it's not there").click()
        await expect(page.locator(".done")).to_have_text("Thank you: we have your answer.")
        await context.close()

    status = await d.question(CASE, "locate-CAR-2-1")
    assert [(c.claim_id, str(c.amount), str(c.by)) for c in status.claims] == [
        (status.claims[0].claim_id, "18.50 USD", "customer:M-42")
    ]
    assert status.claims[0].receipt_sha256 is not None
