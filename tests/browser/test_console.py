"""The agent console and the approval desk in real Chromium, against a real deployment (dev
server, worker and API processes): S1 worked from the inbox to the follow-up in the console,
its money decided at the desk, and a manager who owns the case refused by four eyes."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from makegood.credentials import token_hash
from tests.browser.chromium import check_page, chromium, sign_in
from tests.deployment import AGENT, DEV_TOKENS, MANAGER, Deployment, deployed
from tests.harness import ROOT, TICKETS

MIA = "mia-manager-token"  # a second manager
CASE = "case-T-1001"
WAIT = 30_000  # ms: what the case takes to reach the next step, by itself


@pytest.fixture
async def deployment(tmp_path: Path) -> AsyncIterator[Deployment]:
    tokens = {token_hash(t): who for t, who in {**DEV_TOKENS, MIA: "manager:mia"}.items()}
    async with deployed(tmp_path, MAKEGOOD_API_TOKENS=json.dumps(tokens)) as dep:
        yield dep


async def answer(page: Page, qid: str, choice: str) -> None:
    """Wait (the page updates by itself) for the question, then answer it with one click."""
    asked = page.locator("section.ask")
    await expect(asked).to_contain_text(f"Question {qid}", timeout=WAIT)
    await asked.get_by_role("button", name=choice, exact=True).click()
    await expect(page.locator(".done")).to_contain_text(f"answer '{choice}' taken")


async def claim(
    page: Page, claim_id: str, amount: str, receipt: Path | None = None, *, taken: bool = True
) -> None:
    await page.get_by_label("Claim id").fill(claim_id)
    await page.get_by_label("Amount (USD)").fill(amount)
    await page.get_by_label("What it was for").fill(f"Taxi ({claim_id})")
    if receipt is not None:
        await page.get_by_label("Receipt (PDF or photo, optional)").set_input_files(receipt)
    await page.get_by_role("button", name="Submit the claim").click()
    if taken:
        await expect(page.locator(".done")).to_contain_text(f"claim {claim_id} for {amount} USD")


async def test_s1_in_the_console_and_at_the_approval_desk(deployment: Deployment) -> None:
    d, base = deployment, deployment.api_url
    async with chromium() as browser:
        context, agent = await sign_in(browser, base, AGENT)
        # Open the case from its ticket, in the console.
        await agent.get_by_role("link", name="Open a case").click()
        await agent.get_by_label("Ticket (JSON)").fill("{not json")
        await agent.get_by_role("button", name="Open the case").click()
        await expect(agent.locator(".error")).to_contain_text("Nothing was started")
        await check_page(agent, "open-refused")
        await agent.get_by_label("Ticket (JSON)").fill(
            (TICKETS / "s1-missing-car.json").read_text()
        )
        await agent.get_by_role("button", name="Open the case").click()
        await expect(agent).to_have_url(re.compile(f"/console/cases/{CASE}"))

        # The inbox lists it with what it waits for and its SLA clock.
        await agent.get_by_role("link", name="Inbox").click()
        row = agent.get_by_role("row").filter(has_text=CASE)
        await expect(row).to_contain_text("car_missing")
        await expect(row).to_contain_text("the customer's answer (locate-CAR-1-1)")
        await expect(row).to_contain_text("left")
        await check_page(agent, "inbox")
        await row.get_by_role("link", name=CASE).click()
        await expect(agent.locator("h1")).to_contain_text(CASE)
        await check_page(agent, "case")

        await answer(agent, "locate-CAR-1-1", "not_found")
        await answer(agent, "locate-CAR-1-2", "not_found")  # reached without a reload
        await expect(agent.locator("section.ask")).to_contain_text(
            "Question pickup-1", timeout=WAIT
        )
        await claim(agent, "taxi-1", "18.50", ROOT / "examples/receipts/taxi-1.pdf")
        # Again: the case refuses it, and the page says why.
        await claim(agent, "taxi-1", "18.50", taken=False)
        await expect(agent.locator(".error")).to_contain_text("claim taxi-1 was already submitted")
        await answer(agent, "pickup-1", "missing")
        await answer(agent, "locate-CAR-2-1", "not_found")
        await answer(agent, "locate-CAR-2-2", "not_found")
        await expect(agent.locator("#a-h")).to_contain_text("rebook-2", timeout=WAIT)

        # A manager decides the upgrade at the desk.
        _, manager = await sign_in(browser, base, MANAGER)
        await manager.get_by_role("link", name="Approvals").click()
        item = manager.locator("article").filter(has_text=f"{CASE}: rebook-2")
        await item.get_by_role("button", name="Approve").click()
        await expect(manager.locator(".done")).to_contain_text("rebook-2 approved")

        await expect(agent.locator("section.ask")).to_contain_text(
            "Question pickup-2", timeout=WAIT
        )
        await claim(agent, "taxi-2", "23.75")
        await answer(agent, "pickup-2", "picked_up")
        await answer(agent, "claims", "done")
        await expect(agent.locator("#a-h")).to_contain_text("compensation", timeout=WAIT)

        # Mia takes the case, so four eyes keep her from approving its money: the desk says
        # so and offers no button, and the case refuses a decision sent anyway.
        _, mia = await sign_in(browser, base, MIA)
        await mia.goto(f"{base}/console/cases/{CASE}")
        await mia.get_by_role("button", name="Assign").click()
        await expect(mia.locator(".done")).to_be_visible()
        await mia.get_by_role("link", name="Approvals").click()
        mine = mia.locator("article").filter(has_text=f"{CASE}: compensation")
        await expect(mine).to_contain_text("63.25 USD")
        await expect(mine).to_contain_text("Four eyes: you own this case.")
        await expect(mine.get_by_role("button", name="Approve")).to_have_count(0)
        await check_page(mia, "desk-four-eyes")
        csrf = await mia.locator("input[name=csrf]").first.get_attribute("value")
        sent = await mia.request.post(
            f"{base}/console/cases/{CASE}/decide",
            form={"csrf": csrf or "", "request_id": "compensation", "decision": "approve"},
        )
        assert sent.status == 409
        assert "manager:mia owns this case: money on a case needs a second manager" in (
            await sent.text()
        )

        await manager.reload()
        item = manager.locator("article").filter(has_text=f"{CASE}: compensation")
        await expect(item).to_contain_text("63.25 USD")
        await expect(item).to_contain_text("taxi-1: Taxi (taxi-1), 18.50 USD (view the receipt, ")
        href = await item.get_by_role("link", name="view the receipt").get_attribute("href")
        shown = await manager.request.get(f"{base}{href}")
        assert shown.ok and shown.headers["content-type"] == "application/pdf"
        assert await shown.body() == (ROOT / "examples/receipts/taxi-1.pdf").read_bytes()
        await check_page(manager, "desk")
        await item.get_by_role("button", name="Approve all 63.25 USD").click()
        await expect(manager.locator(".done")).to_contain_text("compensation approved")

        await expect(agent.locator("#facts-h + dl")).to_contain_text("follow_up", timeout=WAIT)
        await check_page(agent, "case-follow-up")
        await context.close()

    payments = await d.rows("SELECT key, amount FROM payments ORDER BY key")
    assert len({p["key"] for p in payments}) == len(payments) == 4
    assert sum(Decimal(p["amount"]) for p in payments) == Decimal("84.25")
    status = await d.until(CASE, lambda s: s.stage == "follow_up", "follow-up")
    acted = {(e.kind, e.by) for e in status.events if e.by}
    assert acted == {
        ("answer", "agent:dev-agent"),
        ("claim", "agent:dev-agent"),
        ("assigned", "manager:mia"),
        ("approval", "manager:dev-manager"),
    }
    assert status.opened_by == "agent:dev-agent"
    assert status.claims[0].receipt_sha256 is not None
