"""Nothing unbounded reaches a case through the API: concurrent actions are taken one by one
(never a 500), a case's notes stop at its limit with a 429 that names it, and tickets the
case could not carry are refused field by field before anything starts."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from makegood.adapters.local.store import LocalStore
from tests.api_harness import Api, running_api
from tests.harness import TICKETS


def raw(name: str) -> dict[str, Any]:
    return json.loads((TICKETS / name).read_text())  # type: ignore[no-any-return]


@pytest.fixture
async def api(tmp_path: Path, store: LocalStore, task_queue: str) -> AsyncIterator[Api]:
    async with running_api(tmp_path, store, task_queue) as running:
        yield running


async def test_concurrent_actions_on_one_case_are_all_taken_then_limited(api: Api) -> None:
    opened = await api.post("/cases", raw("s1-missing-car.json"))
    assert opened.status_code == 201, opened.text
    case_id = opened.json()["case_id"]
    await api.until(case_id, lambda s: s["question"] is not None, "the first question")

    # Thirty at once, half of them escalations (in flight until ops is told, an activity):
    # every one is taken, none answers 5xx. (The issue saw 500s past ten; on this dev server
    # the SDK's own retries absorbed them, so this guards the outcome, not that cause.)
    answers = await asyncio.gather(
        *(
            api.post(f"/cases/{case_id}/escalate", {"reason": f"escalation {n}"})
            if n % 2
            else api.post(f"/cases/{case_id}/notes", {"text": f"note {n}"})
            for n in range(30)
        )
    )
    assert sorted({r.status_code for r in answers}) == [200], [r.text for r in answers]
    status = await api.status(case_id)
    assert len(status["notes"]) == 15 and len(status["escalations"]) == 15
    assert status["actions"] == 30

    for n in range(15, 100):  # the default playbook's limit is 100 notes
        response = await api.post(f"/cases/{case_id}/notes", {"text": f"note {n}"})
        assert response.status_code == 200, response.text
    over = await api.post(f"/cases/{case_id}/notes", {"text": "one too many"})
    assert over.status_code == 429
    assert "at most 100 notes per case" in over.json()["detail"]
    assert len((await api.status(case_id))["notes"]) == 100
    # The case still answers and still takes the ways out.
    escalated = await api.post(f"/cases/{case_id}/escalate", {"reason": "too many notes"})
    assert escalated.status_code == 200, escalated.text


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        (lambda t: t.update(reported_at="2026-12-01T09:30:00"), "reported_at", "time zone"),
        (
            lambda t: t["incident"]["paid"].update(currency="XXX"),
            "incident.paid.currency",
            "not a currency anyone can be paid in",
        ),
        (
            lambda t: t["incident"]["paid"].update(amount="999999.00"),
            "incident.paid.amount",
            "above the maximum of 1000000 any case may pay",
        ),
    ],
    ids=["naive-time", "no-currency", "over-the-ceiling"],
)
async def test_tickets_that_would_wedge_a_case_are_refused_before_anything_starts(
    api: Api, change: Any, field: str, reason: str
) -> None:
    ticket = raw("s1-missing-car.json")
    change(ticket)
    response = await api.post("/cases", ticket)
    assert response.status_code == 422, response.text
    problems = response.json()["problems"]
    assert any(p["field"] == field and reason in p["reason"] for p in problems), problems
    listed = await api.get("/cases", role="auditor")
    assert listed.json() == []
