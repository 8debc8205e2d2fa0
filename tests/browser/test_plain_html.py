"""The pages without JavaScript, and by keyboard alone: every action is a plain form (htmx only
enhances), so a browser with scripts off works the case the same way."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import expect

from tests.browser.chromium import DESK, chromium
from tests.deployment import AGENT, Deployment, deployed
from tests.harness import TICKETS

CASE = "case-T-1001"


@pytest.fixture
async def deployment(tmp_path: Path) -> AsyncIterator[Deployment]:
    async with deployed(tmp_path) as dep:
        yield dep


async def test_an_agent_works_by_keyboard_with_scripts_off(deployment: Deployment) -> None:
    d, base = deployment, deployment.api_url
    await d.ok("open", str(TICKETS / "s1-missing-car.json"))
    await d.question(CASE, "locate-CAR-1-1")
    async with chromium() as browser:
        context = await browser.new_context(viewport=DESK, java_script_enabled=False)  # type: ignore[arg-type]
        page = await context.new_page()
        await page.goto(f"{base}/console")
        # The first Tab reaches the skip link; the token field takes the keyboard's typing.
        await page.keyboard.press("Tab")
        assert await page.evaluate("document.activeElement.textContent") == "Skip to the content"
        await page.get_by_label("Your token").focus()
        await page.keyboard.type(AGENT)
        await page.keyboard.press("Enter")
        await expect(page).to_have_url(f"{base}/console")

        await page.get_by_role("link", name=CASE).focus()
        await page.keyboard.press("Enter")
        await expect(page.locator("h1")).to_contain_text(CASE)
        button = page.locator("section.ask").get_by_role("button", name="not_found", exact=True)
        await button.focus()
        await page.keyboard.press("Enter")
        await expect(page.locator(".done")).to_contain_text("answer 'not_found' taken")

        await page.get_by_label("Note").fill("Called the member: no horn heard")
        await page.get_by_label("Note").press("Tab")
        await page.keyboard.press("Enter")  # the focus is on "Add the note"
        await expect(page.locator(".done")).to_contain_text("note added")
        await context.close()
    status = await d.question(CASE, "locate-CAR-1-2")
    assert status.notes == ["agent:dev-agent: Called the member: no horn heard"]
