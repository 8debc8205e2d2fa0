"""Audit: committed histories replay; a changed workflow is caught at the right event; the
timeline tells S1 in full; reconcile finds money the engine did not move, and money missing."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner

from makegood.adapters.local.providers import LocalPayments
from makegood.adapters.local.store import LocalStore
from makegood.audit.archive import Manifest, read_folder
from makegood.audit.formats import as_html, as_json, as_markdown, as_text
from makegood.audit.reconcile import movements, reconcile
from makegood.audit.replay import replay_all
from makegood.audit.summary import summarize
from makegood.audit.timeline import timeline
from makegood.cases import send
from makegood.domain import ids
from makegood.domain.actions import Actor, AssignCase, EscalateCase
from makegood.privacy.codec import decode_history
from makegood.registry import WORKFLOWS, build_replayer, build_worker
from makegood.workflows.recovery import RecoveryWorkflow
from tests.harness import (
    AGENT,
    CONVERTER,
    HISTORIES,
    MANAGER,
    keys,
    local_adapters,
    start,
    ticket,
)
from tests.test_sla import OPS, with_sla

SCENARIOS = ["s1", "s2", "s3", "s4", "s5", "s6"]
SAM = "sam@makegood.example.com"


async def committed() -> list[WorkflowHistory]:
    """The current scenario histories, and those kept from before earlier changes."""
    folders = sorted(m.parent for m in HISTORIES.rglob("manifest.json"))
    return [h for folder in folders async for h in read_folder(folder)]


async def each(histories: list[WorkflowHistory]) -> AsyncIterator[WorkflowHistory]:
    for history in histories:
        yield history


def by_file(name: str) -> str:
    entry = next(e for e in Manifest.load(HISTORIES).entries if e.file == f"{name}.json")
    return entry.workflow_id


def unsandboxed() -> Replayer:
    """A replayer that sees monkeypatched workflow code (the sandbox would re-import it)."""
    return Replayer(
        workflows=list(WORKFLOWS),
        data_converter=CONVERTER,
        workflow_runner=UnsandboxedWorkflowRunner(),
    )


def test_every_scenario_has_a_committed_history() -> None:
    files = {e.file for e in Manifest.load(HISTORIES).entries}
    assert {f"{s}.json" for s in SCENARIOS} | {"s6-callback.json"} <= files


@pytest.mark.parametrize("strict", [True, False], ids=["strict sandbox", "workers' sandbox"])
async def test_committed_histories_replay_against_the_current_code(strict: bool) -> None:
    replayer = build_replayer(quiet=True, strict=strict)
    results = await replay_all(each(await committed()), replayer=replayer)
    assert len(results) >= len(Manifest.load(HISTORIES).entries)
    assert [(r.workflow_id, r.error) for r in results if not r.ok] == []


async def test_a_tampered_history_file_is_refused(tmp_path: Path) -> None:
    copy = tmp_path / "histories"
    shutil.copytree(HISTORIES, copy)
    s5 = copy / "s5.json"
    s5.write_text(s5.read_text().replace('"eventId": "2"', '"eventId": "3"', 1))
    with pytest.raises(ValueError, match=r"s5\.json: checksum does not match the manifest"):
        async for _ in read_folder(copy):
            pass


async def test_an_altered_workflow_is_reported_non_deterministic_at_the_right_event(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = RecoveryWorkflow._acknowledge

    async def chattier(self: RecoveryWorkflow) -> None:  # a new first message, unpatched
        await self.talk.tell("hello", "Hello", "We got your ticket.")
        await original(self)

    monkeypatch.setattr(RecoveryWorkflow, "_acknowledge", chattier)
    history = next(h for h in await committed() if h.workflow_id == by_file("s5"))
    (result,) = await replay_all(each([history]), replayer=unsandboxed())

    # The extra message takes the apology's place; the code then sends the apology where the
    # history moved on to the remedy, whose first command is the ownership check's patch
    # marker: that marker is where they part.
    apology = next(
        e.event_id
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and b'"step":"ack:' in e.activity_task_scheduled_event_attributes.input.payloads[0].data
    )
    remedy_begins = next(
        e.event_id
        for e in history.events
        if e.event_id > apology
        and e.event_type
        in (
            EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
            EventType.EVENT_TYPE_MARKER_RECORDED,
        )
    )
    assert not result.ok
    assert result.diverged_at == remedy_begins
    assert "Nondeterminism" in (result.error or "")


async def test_a_reordered_activity_is_reported_at_the_event_it_breaks() -> None:
    """The SDK names the activity types but no event: replay finds the event itself."""
    history = next(h for h in await committed() if h.workflow_id.startswith("case-T-3001"))
    scheduled = [
        e for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    first, second = (
        e.activity_task_scheduled_event_attributes.activity_type for e in scheduled[:2]
    )
    first.name, second.name = second.name, first.name  # the code now runs them the other way
    [result] = await replay_all(each([history]))
    assert result.error is not None and "does not match" in result.error
    assert result.diverged_at == scheduled[0].event_id


async def test_the_same_change_behind_workflow_patched_keeps_old_cases_replaying(
    monkeypatch: pytest.MonkeyPatch,
    bare_env: WorkflowEnvironment,
    store: LocalStore,
    task_queue: str,
) -> None:
    original = RecoveryWorkflow._acknowledge

    async def chattier(self: RecoveryWorkflow) -> None:
        if workflow.patched("hello-before-apology"):
            await self.talk.tell("hello", "Hello", "We got your ticket.")
        await original(self)

    monkeypatch.setattr(RecoveryWorkflow, "_acknowledge", chattier)
    old = await replay_all(each(await committed()), replayer=unsandboxed())
    assert [r.workflow_id for r in old if not r.ok] == []

    # New cases take the new path, and their histories replay with the patched code too.
    activities = local_adapters(store).activities()
    async with build_worker(
        bare_env.client, task_queue, activities, runner=UnsandboxedWorkflowRunner()
    ):
        case = await start(
            bare_env.client, store, ticket("s5-wrong-drink.json"), task_queue, env=bare_env
        )
        await case.result()
    assert keys(await case.messages())[:2] == [
        "hello:sms",
        "ack:sms",
    ]
    fresh = await case.handle.fetch_history()
    (result,) = await replay_all(each([fresh]), replayer=unsandboxed())
    assert result.ok, result.error


async def test_the_s1_timeline_lists_every_action_and_amount() -> None:
    s1 = [h for h in await committed() if h.workflow_id == by_file("s1")]
    lines = timeline(s1)
    kinds = [line.kind for line in lines]
    text = [line.text for line in lines]

    assert kinds[0] == "report" and "R-1001" in text[0] and "42.00 USD" in text[0]
    assert [t for t in text if t.startswith("sounded the horn")] == [
        "sounded the horn of CAR-1",
        "sounded the horn of CAR-1",
        "sounded the horn of CAR-2",
        "sounded the horn of CAR-2",
    ]
    bookings = [t for k, t in zip(kinds, text, strict=True) if k == "booking"]
    assert len(bookings) == 2 and "CAR-2 (compact)" in bookings[0]
    assert "CAR-3 (premium)" in bookings[1] and bookings[1].endswith("upgraded")
    releases = [t for k, t in zip(kinds, text, strict=True) if k == "release"]
    assert len(releases) == 2 and releases[1] == "released booking R-1001 (CAR-1)"
    assert releases[0].endswith("(CAR-2)")  # each release names the vehicle it freed
    payments = [(line.amount, line.key) for line in lines if line.kind == "payment"]
    wid = by_file("s1")
    assert payments == [  # the part within the frontline limit first, the rest once approved
        ("21.00 USD", f"{wid}:refund:within-limit"),
        ("21.00 USD", f"{wid}:refund"),
        ("18.50 USD", f"{wid}:reimburse:taxi-1"),
        ("23.75 USD", f"{wid}:reimburse:taxi-2"),
    ]
    decisions = [(line.text, line.by) for line in lines if line.kind == "approval" and line.by]
    assert decisions == [
        ("rebook-2 approved", "manager:mia"),
        ("compensation approved", "manager:mia"),
    ]
    claims = [(line.text, line.amount) for line in lines if line.kind == "claim"]
    assert [a for _, a in claims] == ["18.50 USD", "23.75 USD"]
    confirmations = [t for t in text if t.endswith("Confirmation: what we did")]
    assert len(confirmations) == 1
    assert lines[-1].kind == "closed" and "paid out 84.25 USD" in lines[-1].text
    assert [line.at for line in lines] == sorted(line.at for line in lines)

    # What the customer read, word for word: the apology, and each question with its choices.
    said = [line.said for line in lines if line.kind == "message" and line.said]
    assert "we are sorry" in said[0]
    horn = next(t for t in said if "sounded the horn of CAR-1" in t)
    assert "Please answer: found / not_found (question locate-CAR-1-1)." in horn
    quoted = [t for t in as_text(lines).splitlines() if t.startswith(" " * 33 + "| ")]
    assert any("we are sorry" in t for t in quoted)
    assert '<pre class="said">' in as_html(lines, wid)
    assert json.loads(as_json(lines))[0]["kind"] == "report"
    assert "| payment | refund of 21.00 USD" in as_markdown(lines, wid)
    subtotals = [t.rsplit("; ", 1)[1] for k, t in zip(kinds, text, strict=True) if k == "payment"]
    assert subtotals == [
        "paid so far 21.00 USD",
        "paid so far 42.00 USD",
        "paid so far 60.50 USD",
        "paid so far 84.25 USD",
    ]
    assert "<td>23.75 USD</td>" in as_html(lines, wid)


async def test_the_s1_timeline_opens_with_a_summary_an_auditor_can_check() -> None:
    lines = timeline([h for h in await committed() if h.workflow_id == by_file("s1")])
    summary = summarize(lines)
    assert summary[0].startswith("Outcome: resolved, at ")
    assert summary[1] == ("Paid: 84.25 USD in all (refund 42.00 USD, reimbursement 42.25 USD)")
    assert [f for f in summary if f.startswith("Decided: ")] == [
        f"Decided: rebook-2 approved by manager:mia at {lines[i].at:%Y-%m-%d %H:%M:%S}"
        for i, line in enumerate(lines)
        if line.text == "rebook-2 approved"
    ] + [
        f"Decided: compensation approved by manager:mia at {line.at:%Y-%m-%d %H:%M:%S}"
        for line in lines
        if line.text == "compensation approved"
    ]
    first_message = next(line for line in lines if line.kind == "message")
    waited = timedelta(seconds=round((first_message.at - lines[0].at).total_seconds()))
    assert summary[-2] == f"First contact: {waited} after the report"
    assert summary[-1].startswith("Resolution: ")
    text = as_text(lines, summary)
    assert text.startswith("Outcome: resolved") and text.index("Paid:") < text.index("report")
    assert "- Paid: 84.25 USD in all" in as_markdown(lines, "s1", summary)
    assert '<ul class="summary"><li>Outcome: resolved' in as_html(lines, "s1", summary)


async def test_the_timeline_tells_operations_messages_by_their_step_not_their_recipient(
    env: WorkflowEnvironment, store: LocalStore, task_queue: str
) -> None:
    """An SLA warning goes to the owner's own address: it is still an SLA warning, and an
    approval request, an escalation and a breach are told apart whatever their wording."""
    book = with_sla("car_missing", approval_decision="PT10M")
    case = await start(env.client, store, ticket("s1-missing-car.json"), task_queue, book, env)
    await case.answer("locate-CAR-1-1", "not_found")
    await case.answer("locate-CAR-1-2", "not_found")
    await case.answer("pickup-1", "picked_up")
    await case.answer("claims", "done")
    await case.until(lambda s: s.approval is not None, "approval")
    sam = Actor(id="sam", role="agent")
    await send(case.client, case.id, AssignCase(to=sam, contact=SAM, by=MANAGER))
    await send(case.client, case.id, EscalateCase(reason="customer is a journalist", by=AGENT))
    await case.skip(timedelta(minutes=8, seconds=30))
    await case.until(lambda s: any(c.warned_at for c in s.slas), "warning")
    await case.skip(timedelta(minutes=2))
    await case.until(lambda s: any(c.breached_at for c in s.slas), "breach")
    await case.approve("compensation")
    await case.until(lambda s: s.stage == "follow_up", "follow-up")

    lines = timeline([await decode_history(await case.handle.fetch_history(), CONVERTER)])
    told = [
        (line.kind, ids.step_of(line.key), line.text.partition(":")[0])
        for line in lines
        if line.kind in ("approval", "escalation", "sla_warning", "sla_breach") and line.key
    ]
    assert told == [
        ("approval", "approval:compensation", f"approval asked of {OPS}"),
        ("escalation", "escalation:1", f"to {OPS}"),
        ("sla_warning", "sla:approval:compensation:warning", f"to {SAM}"),
        ("sla_breach", "sla:approval:compensation:breach", f"to {OPS}"),
    ]
    (warning,) = [line for line in lines if line.kind == "sla_warning"]
    assert "is at 0:08:00 of its 0:10:00 target. Owner: agent:sam" in warning.text
    assert not [ln for ln in lines if ln.kind == "message" and (SAM in ln.text or OPS in ln.text)]
    assert {ids.step_of(ln.key) for ln in lines if ln.kind == "message" and ln.key} >= {
        "ack:email",
        "confirm:email",
    }


async def test_the_s6_timeline_shows_every_call_and_callback() -> None:
    s6 = [h for h in await committed() if h.workflow_id.startswith(by_file("s6"))]
    assert len(s6) == 2
    lines = timeline(s6)
    statuses = [line.text for line in lines if line.kind == "call_status"]
    assert len(statuses) == 5
    assert statuses[1].endswith("again, ignored)")
    assert len([line for line in lines if line.text.startswith("call call_")]) == 3


async def test_reconcile_finds_money_moved_behind_the_engines_back(
    env: WorkflowEnvironment, store: LocalStore, task_queue: str
) -> None:
    case = await start(env.client, store, ticket("s5-wrong-drink.json"), task_queue, env=env)
    await case.result()
    other = await start(env.client, store, ticket("s4-wrong-size.json"), task_queue, env=env)
    await other.answer("substitute", "substitute", value="SHORTS-NAVY-M")
    await other.until(lambda s: s.stage == "follow_up", "follow-up")
    histories = [
        await decode_history(await c.handle.fetch_history(), CONVERTER) for c in (case, other)
    ]
    ledger = LocalPayments(store)

    moves = movements(histories)
    assert sorted(str(m.amount) for m in moves) == ["10.00 USD", "4.80 USD"]
    assert reconcile(moves, await ledger.ledger([case.id, other.id])) == []

    # Someone pays a "goodwill" refund by hand, and the S4 coupon vanishes from the books.
    await store.conn.execute(
        "INSERT INTO payments VALUES ('pay_manual', ?, ?, 'refund', '25.00', 'USD', 'C-88', "
        "'ORD-3001', 'by hand', '2026-11-23T12:00:00+00:00')",
        (f"{case.id}:manual", case.id),
    )
    await store.conn.execute("DELETE FROM payments WHERE key = ?", (f"{other.id}:coupon",))
    diffs = reconcile(moves, await ledger.ledger([case.id, other.id]))
    assert sorted((d.problem, d.key) for d in diffs) == [
        ("missing_in_ledger", f"{other.id}:coupon"),
        ("not_in_history", f"{case.id}:manual"),
    ]
    await store.conn.execute(
        "UPDATE payments SET amount = '48.00' WHERE key = ?", (f"{case.id}:refund",)
    )
    mismatch = [
        d
        for d in reconcile(moves, await ledger.ledger([case.id]))
        if d.problem == "amount_mismatch"
    ]
    assert [(d.history, d.ledger) for d in mismatch] == [("4.80 USD", "48.00 USD")]
