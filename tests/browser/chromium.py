"""Real Chromium for the pages' tests: Debian's `chromium`, driven by Playwright through
`executable_path` (Playwright's own browser download is never used), and axe-core (bundled in
axe-playwright-python) for accessibility. Screenshots go to build/screens/ (MAKEGOOD_SCREENS)."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from tests.harness import ROOT

# As the machine's probe starts it: no sandbox (root in CI), and no background networking,
# whose connections a closed network refuses many at a time.
ARGS: Final = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
SERIOUS: Final = ("serious", "critical")
PHONE: Final = {"width": 390, "height": 844}
DESK: Final = {"width": 1280, "height": 900}


def chromium_path() -> str:
    found = os.environ.get("MAKEGOOD_CHROMIUM") or shutil.which("chromium")
    if not found:
        raise RuntimeError(
            "Debian's chromium is needed for the page tests: apt-get install chromium "
            "(.ci/run does), or set MAKEGOOD_CHROMIUM to a Chromium binary"
        )
    return found


def screens() -> Path:
    folder = Path(os.environ.get("MAKEGOOD_SCREENS", ROOT / "build" / "screens"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium_path(), args=list(ARGS))
        try:
            yield browser
        finally:
            await browser.close()


async def sign_in(browser: Browser, base: str, token: str) -> tuple[BrowserContext, Page]:
    """A browser context of its own (its own cookies), signed in to the console with `token`."""
    context = await browser.new_context(viewport=DESK)  # type: ignore[arg-type]
    page = await context.new_page()
    await page.goto(f"{base}/console")
    assert page.url.startswith(f"{base}/console/sign-in"), page.url
    await page.get_by_label("Your token").fill(token)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{base}/console")
    return context, page


async def check_page(page: Page, name: str) -> None:
    """No serious or critical accessibility violation (axe-core), and a screenshot kept."""
    await page.screenshot(path=screens() / f"{name}.png", full_page=True)
    results = await Axe().run(page)
    serious = [v for v in results.response["violations"] if v.get("impact") in SERIOUS]
    assert not serious, f"{name}: " + results.generate_report()
