"""The scenarios' stories as their people act them, for tests that need a case run to its
close (the scenario tests themselves assert along the way, step by step)."""

from __future__ import annotations

from datetime import timedelta

from tests.harness import Case


async def s1_to_the_close(case: Case) -> None:
    """S1: two horns and a missing second car, both taxis claimed, the upgrade and the
    compensation approved, and the member satisfied at the follow-up a day later."""
    for qid in ("locate-CAR-1-1", "locate-CAR-1-2"):
        await case.answer(qid, "not_found")
    await case.question("pickup-1")
    await case.claim("taxi-1", "18.50")
    await case.answer("pickup-1", "missing")
    for qid in ("locate-CAR-2-1", "locate-CAR-2-2"):
        await case.answer(qid, "not_found")
    await case.approve("rebook-2")
    await case.claim("taxi-2", "23.75")
    await case.answer("pickup-2", "picked_up")
    await case.answer("claims", "done")
    await case.until(lambda s: s.approval is not None, "compensation approval")
    await case.approve("compensation")
    await case.until(lambda s: s.stage == "follow_up", "follow-up")
    await case.skip(timedelta(days=1))
    await case.answer("follow-up-1", "satisfied")


async def s4_to_the_close(case: Case) -> None:
    """S4: the navy substitute chosen, and the customer satisfied three days later."""
    await case.answer("substitute", "substitute", value="SHORTS-NAVY-M")
    await case.skip(timedelta(days=3))
    await case.answer("follow-up-1", "satisfied")
