"""The trends page in real Chromium over S1, S4 and S5 run to their close (time-skipping
server, local adapters, the case index the worker writes), and its CSV export; an agent is
refused it with the role table's reason."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.async_api import expect

from makegood.adapters.local.store import LocalStore
from makegood.api.app import create_app
from makegood.index import opened_index
from makegood.registry import build_worker
from makegood.settings import Settings
from tests.api_harness import free_port, serving_app
from tests.browser.chromium import check_page, chromium, sign_in
from tests.harness import local_adapters, start, ticket, time_skipping_env
from tests.stories import s1_to_the_close, s4_to_the_close

OPS_LEAD, AGENT = "dev-ops-lead-token", "dev-agent-token"  # the dev table, on loopback


async def test_the_trends_page_over_s1_s4_and_s5(
    store: LocalStore, task_queue: str, tmp_path: Path
) -> None:
    index_file = tmp_path / "cases.sqlite"
    scenarios = (
        ("s5-wrong-drink.json", None),
        ("s4-wrong-size.json", s4_to_the_close),
        ("s1-missing-car.json", s1_to_the_close),
    )
    # Each on a time-skipping server of its own: its clock starts at today's, so each case
    # closes when its story says (S5 at once, S1 a day later, S4 three), not wherever a shared
    # clock had been skipped to by the cases before it.
    async with opened_index(str(index_file), default=index_file) as index:
        for name, drive in scenarios:
            async with (
                await time_skipping_env() as env,
                build_worker(
                    env.client, task_queue, local_adapters(store).activities(), index=index
                ),
            ):
                case = await start(env.client, store, ticket(name), task_queue, env=env)
                if drive is not None:
                    await drive(case)
                assert (await case.result()).resolution == "resolved"

    today = datetime.now(UTC).date()
    since, until = today - timedelta(days=1), today + timedelta(days=5)  # skipped time too
    settings = Settings(data_dir=tmp_path, case_index=str(index_file), task_queue=task_queue)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with (
        await time_skipping_env() as env,
        serving_app(create_app(settings, client=env.client), port),
        chromium() as browser,
    ):
        _, agent = await sign_in(browser, base, AGENT)
        refused = await agent.goto(f"{base}/console/trends")
        assert refused is not None and refused.status == 403
        await expect(agent.locator(".error")).to_have_text(
            "trends are shown to a manager, an ops lead or an auditor, not an agent"
        )

        _, lead = await sign_in(browser, base, OPS_LEAD)
        # The time-skipping server lists no cases: the inbox says so, and links on.
        await expect(lead.locator(".error")).to_contain_text("Temporal could not list the cases")
        await lead.get_by_role("link", name="Trends").click()
        await lead.get_by_label("From").fill(since.isoformat())
        await lead.get_by_label("To").fill(until.isoformat())
        await lead.get_by_role("button", name="Show").click()
        main = lead.locator("main")
        await expect(main).to_contain_text(f"Cases closed from {since} to {until} (UTC): 3.")
        kinds = lead.get_by_role(
            "img", name="Cases by kind: car_missing 1, wrong_item 1, wrong_order 1"
        )
        await expect(kinds).to_be_visible()
        await expect(
            lead.get_by_role("img", name="Cases by resolution: resolved 3")
        ).to_be_visible()
        money = lead.locator("section").filter(has_text="Compensation")
        await expect(money.get_by_role("row", name="paid as refund")).to_contain_text("46.80 USD")
        await expect(money.get_by_role("row", name="paid as reimbursement")).to_contain_text(
            "42.25 USD"
        )
        await expect(money.get_by_role("row", name="paid as coupon")).to_contain_text("10.00 USD")
        # 84.25 + 4.80 + 17.00 (S4's coupon and waived difference) of 42.00 + 4.80 + 54.00.
        await expect(money.get_by_role("row", name="all compensation paid")).to_contain_text(
            "106.05 USD"
        )
        await expect(money.get_by_role("row", name="compensation as a share")).to_contain_text(
            "105%"
        )
        rates = lead.locator("section").filter(has_text="Rates")
        await expect(rates.get_by_role("row", name="re-opened")).to_contain_text("0%")
        await check_page(lead, "trends")

        async with lead.expect_download() as waiting:
            await lead.get_by_role("link", name="Export CSV").click()
        download = await waiting.value
        text = await asyncio.to_thread(Path(await download.path()).read_text)
        rows = list(csv.reader(io.StringIO(text)))
        assert rows[0] == ["metric", "key", "value"]
        assert ["cases", "", "3"] in rows
        assert ["compensation_by_kind", "reimbursement USD", "42.25"] in rows
        assert ["by_kind", "car_missing", "1"] in rows
        assert ["by_cause", "picking-error", "1"] in rows
