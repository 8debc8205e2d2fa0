"""End to end on the real `temporal` dev server: the worker, the API and the CLI as separate
processes (tests/deployment.py).

These drive Makegood exactly as an operator does (`makegood open`, `answer`, `claim`,
`approve`, through the API with the dev tokens), read the local providers' SQLite file the
worker wrote, and kill the worker mid-case to show a case survives it. The auditors' commands
go to Temporal directly.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowHistory

from makegood.adapters.local.store import LocalStore
from tests.api_harness import PAYMENTS_SECRET, free_port
from tests.deployment import (
    AUDITOR,
    MANAGER,
    Deployment,
    cli_environ,
    deployed,
    run_cli,
    wait_for_api,
)
from tests.harness import CONVERTER, ROOT, TICKETS, binary, temporal_env


@pytest.fixture
async def deployment(tmp_path: Path) -> AsyncIterator[Deployment]:
    async with deployed(tmp_path) as dep:
        yield dep


async def test_s5_through_the_cli_with_duplicates_and_bad_tickets_refused(
    deployment: Deployment,
) -> None:
    d = deployment
    s5 = str(TICKETS / "s5-wrong-drink.json")
    assert (await d.ok("open", s5)).startswith("opened case-T-3001 for ticket T-3001")
    again = await d.cli("open", "--json", s5)
    assert again.code == 0 and json.loads(again.out)["created"] is False

    bad = json.loads((TICKETS / "s5-wrong-drink.json").read_text())
    bad["id"] = "T-BAD"
    bad["incident"]["paid"]["amount"] = "-4.80"
    bad["incident"]["kind"] = "cold_soup"
    refused = await d.cli("open", "-", stdin=json.dumps(bad))
    assert refused.code == 2
    assert "incident.kind: unknown value 'cold_soup'; expected 'car_missing'" in refused.err
    assert "nothing was started" in refused.err

    status = await d.until("case-T-3001", lambda s: s.stage == "closed", "closed")
    assert status.resolution == "resolved"
    cases = json.loads(await d.ok("list", "--json"))
    assert [c["case_id"] for c in cases] == ["case-T-3001"]
    assert cases[0]["status"] == "completed"

    payments = await d.rows("SELECT key, kind, amount FROM payments")
    assert payments == [{"key": "case-T-3001:refund", "kind": "refund", "amount": "4.80"}]
    messages = await d.rows("SELECT key, channel FROM messages ORDER BY sent_at")
    assert [(m["key"], m["channel"]) for m in messages] == [
        ("case-T-3001:ack:sms", "sms"),
        ("case-T-3001:confirm:sms", "sms"),
    ]
    outcomes = await d.rows("SELECT case_id, outcome FROM outcomes")
    assert [o["case_id"] for o in outcomes] == ["case-T-3001"]
    assert json.loads(outcomes[0]["outcome"])["resolution"] == "resolved"

    text = await d.ok("status", "case-T-3001")
    assert "stage: closed  resolution: resolved" in text and "4.80 USD" in text

    # The trends of the last 30 days, from the case index the worker wrote as the case closed.
    for _ in range(100):
        found = json.loads(await d.ok("report", "--format", "json", token=MANAGER))
        if found["cases"]:
            break
        await asyncio.sleep(0.1)
    assert (found["cases"], found["without_outcome"]) == (1, 0)
    assert found["by_kind"] == {"wrong_order": 1} and found["by_resolution"] == {"resolved": 1}
    assert found["paid"] == [{"currency": "USD", "amount": "4.80"}]
    assert found["compensation_share"] == {"USD": 1.0}  # the whole price, refunded
    assert found["to_first_contact_s"]["cases"] == 1 and found["escalation_rate"] == 0.0
    csv_rows = (await d.ok("report", "--format", "csv", token=MANAGER)).splitlines()
    assert csv_rows[0] == "metric,key,value"
    assert "compensation_by_kind,refund USD,4.80" in csv_rows and "cases,,1" in csv_rows
    table = await d.ok("report", token=MANAGER)
    assert "by kind: wrong_order 1" in table and "compensation paid: 4.80 USD" in table
    refused = await d.cli("report")  # the agent's token
    assert refused.code == 1
    assert "trends are shown to a manager, an ops lead or an auditor, not an agent" in refused.err
    bad = await d.cli("report", "--since", "2026-12-01", "--until", "2026-11-01", token=MANAGER)
    assert bad.code == 2 and "since: 2026-12-01 is after until (2026-11-01)" in bad.err


async def test_s1_through_the_cli_survives_a_killed_worker(deployment: Deployment) -> None:
    d, case = deployment, "case-T-1001"
    await d.ok("open", str(TICKETS / "s1-missing-car.json"))
    await d.question(case, "locate-CAR-1-1")
    await d.ok("answer", case, "locate-CAR-1-1", "not_found")
    await d.question(case, "locate-CAR-1-2")

    # The worker dies without any chance to clean up; a new one picks the case up.
    code, _ = await d.stop_worker(signal.SIGKILL)
    assert code == -signal.SIGKILL
    await d.start_worker()

    await d.ok("answer", case, "locate-CAR-1-2", "not_found")
    await d.question(case, "pickup-1")
    await d.ok("claim", case, "taxi-1", "18.50", "Taxi to the second car")
    await d.ok("answer", case, "pickup-1", "missing")
    for qid in ("locate-CAR-2-1", "locate-CAR-2-2"):
        await d.question(case, qid)
        await d.ok("answer", case, qid, "not_found")
    await d.until(case, lambda s: s.approval is not None, "rebook approval")
    text = await d.ok("status", case)
    assert "WAITING FOR A MANAGER: rebook-2" in text
    assert f"makegood approve {case} rebook-2 [--reject --note <why>]" in text
    wrong_role = await d.cli("approve", case, "rebook-2")  # the agent's token
    assert wrong_role.code == 1 and "approval decisions come from a manager" in wrong_role.err
    await d.ok("approve", case, "rebook-2", token=MANAGER)
    await d.question(case, "pickup-2")
    await d.ok("claim", case, "taxi-2", "23.75", "Taxi to the third car")
    await d.ok("answer", case, "pickup-2", "picked_up")
    await d.question(case, "claims")
    await d.ok("answer", case, "claims", "done")
    status = await d.until(case, lambda s: s.approval is not None, "compensation approval")
    # Of the 84.25, the 21.00 limit is paid at once; the other 63.25 waits, shown in status.
    assert status.approval is not None and str(status.approval.amount) == "63.25 USD"
    await d.until(
        case, lambda s: any(i.state == "paid" for i in s.compensation), "the in-limit part paid"
    )
    text = await d.ok("status", case)
    assert "WAITING FOR A MANAGER: compensation (63.25 USD pending)" in text
    assert "paid at once within the frontline limit: 21.00 USD" in text
    assert "refund of what you paid (the rest)" in text and " pending " in text
    refused = await d.cli("approve", case, "compensation", "--reject", token=MANAGER)
    assert refused.code == 1 and "needs a note saying why" in refused.err
    await d.ok("approve", case, "compensation", token=MANAGER)
    status = await d.until(case, lambda s: s.stage == "follow_up", "follow-up")
    assert status.follow_up_at is not None
    # Who did what is the token's holder: the agent answered and claimed, the manager decided.
    acted = {(e.kind, e.by) for e in status.events if e.by}
    assert acted == {
        ("answer", "agent:dev-agent"),
        ("claim", "agent:dev-agent"),
        ("approval", "manager:dev-manager"),
    }

    late = await d.cli("claim", case, "taxi-3", "9.00", "Another taxi")
    assert late.code == 1 and "expense claims are closed" in late.err

    payments = await d.rows("SELECT key, amount FROM payments ORDER BY key")
    assert payments == [
        {"key": f"{case}:refund", "amount": "21.00"},
        {"key": f"{case}:refund:within-limit", "amount": "21.00"},
        {"key": f"{case}:reimburse:taxi-1", "amount": "18.50"},
        {"key": f"{case}:reimburse:taxi-2", "amount": "23.75"},
    ]
    assert sum(Decimal(p["amount"]) for p in payments) == Decimal("84.25")
    keys = [m["key"] for m in await d.rows("SELECT key FROM messages")]
    assert len(keys) == len(set(keys))
    assert sum(k.endswith(":confirm:email") for k in keys) == 1
    bookings = await d.rows("SELECT vehicle, status FROM bookings ORDER BY created_at")
    assert [(b["vehicle"], b["status"]) for b in bookings] == [
        ("CAR-1", "released"),
        ("CAR-2", "released"),
        ("CAR-3", "active"),
    ]


async def test_embedded_mode_stops_cleanly_and_keeps_its_cases(tmp_path: Path) -> None:
    port, ui_port = free_port(), free_port()
    environ = temporal_env(
        f"127.0.0.1:{port}",
        **cli_environ(tmp_path, free_port(), MAKEGOOD_UI_PORT=str(ui_port)),
    )
    del environ["MAKEGOOD_API_TOKENS"]  # the dev tokens `make run` ships with, as in the README
    client_box: list[Client] = []

    async def embedded() -> Deployment:
        dep = Deployment(client=None, env=environ, data=tmp_path)  # type: ignore[arg-type]
        await dep.start_worker("--embedded")
        async with asyncio.timeout(60):
            while True:
                try:
                    dep.client = await Client.connect(f"127.0.0.1:{port}", data_converter=CONVERTER)
                    break
                except RuntimeError:
                    await asyncio.sleep(0.2)
        await wait_for_api(dep.api_url, dep.worker)
        client_box.append(dep.client)
        return dep

    first = await embedded()
    await first.ok("open", str(TICKETS / "s1-missing-car.json"))
    await first.question("case-T-1001", "locate-CAR-1-1")
    code, logs = await first.stop_worker(signal.SIGINT)
    assert code == 0, logs
    events = [
        e["event"]
        for e in map(json.loads, filter(lambda ln: ln.startswith("{"), logs.splitlines()))
        if e.get("logger", "").startswith("makegood")
    ]
    assert events[-3:] == ["worker_stopping", "worker_stopped", "dev_server_stopped"]
    assert (tmp_path / "temporal.sqlite").exists()

    second = await embedded()
    try:
        status = await second.question("case-T-1001", "locate-CAR-1-1")
        assert status.stage == "diagnose"
        await second.ok("answer", "case-T-1001", "locate-CAR-1-1", "found")
        await second.until("case-T-1001", lambda s: s.stage == "follow_up", "follow-up")
    finally:
        await second.stop_worker(signal.SIGINT)


async def test_s3_customer_is_contacted_within_30_seconds_and_a_replacement_ordered_once(
    deployment: Deployment,
) -> None:
    d = deployment
    filed = datetime.now(UTC)
    await d.ok("open", str(TICKETS / "s3-ereader.json"))
    status = await d.until("case-T-3301", lambda s: s.stage == "follow_up", "follow-up")

    (ack,) = await d.rows(
        "SELECT key, recipient, subject, body, sent_at FROM messages "
        "WHERE key = 'case-T-3301:ack:email'"
    )
    first_contact = datetime.fromisoformat(ack["sent_at"])
    seconds = (first_contact - filed).total_seconds()
    print(f"\nS3: first contact {seconds:.2f} s after the ticket was filed through the CLI")
    assert 0 < seconds < 30
    assert status.first_contact_at is not None
    assert ack["recipient"] == "tomasz.nowak@example.com"
    assert ack["body"].startswith("Dear Tomasz,") and "EREADER-7" in ack["body"]

    replacements = await d.rows("SELECT action, detail FROM product_actions")
    assert replacements == [
        {"action": "replacement", "detail": "EREADER-7 shipped to replace EREADER-7"}
    ]
    assert await d.rows("SELECT id FROM payments") == []
    confirmation = await d.rows("SELECT body FROM messages WHERE key LIKE '%:confirm:email'")
    assert len(confirmation) == 1 and "EREADER-7" in confirmation[0]["body"]


async def test_s6_telephony_status_reported_through_the_cli(deployment: Deployment) -> None:
    d, case = deployment, "case-T-6001"
    await d.ok("open", str(TICKETS / "s6-support-call.json"))
    status = await d.until(
        case, lambda s: s.callback is not None and s.callback.state == "waiting", "call booked"
    )
    assert status.callback is not None
    call_id = status.callback.attempts[0].call_id
    assert call_id is not None
    text = await d.ok("status", case)
    assert f"makegood call-status {case} {call_id} completed|dropped|no_answer" in text

    # As the provider: signed with its secret, no person's token. A wrong secret changes nothing.
    forged = {**d.env, "MAKEGOOD_TELEPHONY_WEBHOOK_SECRET": PAYMENTS_SECRET}  # not telephony's
    refused = await run_cli(forged, "call-status", case, call_id, "completed")
    assert refused.code == 2, refused.err
    assert f"the API at {d.api_url} did not accept the signature" in refused.err
    await d.ok("call-status", case, call_id, "completed", "--event-id", "tel-1", token=None)
    status = await d.until(case, lambda s: s.stage == "follow_up", "follow-up")
    replayed = await d.cli("call-status", case, call_id, "completed", "--event-id", "tel-1")
    assert replayed.code == 1 and "delivery tel-1 was already received" in replayed.err
    late = await d.ok("call-status", case, call_id, "dropped", "--event-id", "tel-2")
    assert "already finished; report ignored" in late
    assert status.callback is not None and status.callback.state == "completed"
    assert status.callback.ignored_callbacks == []
    unknown = await d.cli("call-status", "case-nope", call_id, "dropped")
    assert unknown.code == 1 and unknown.err == "makegood: no case 'case-nope'\n"
    calls = await d.rows("SELECT key, phone FROM calls")
    assert calls == [{"key": f"{case}:callback:call:1", "phone": "+15550100060"}]


async def test_operators_find_stuck_cases_by_stage_and_breach_and_act_on_them(
    deployment: Deployment,
    tmp_path: Path,
) -> None:
    d = deployment
    strict = tmp_path / "strict.toml"  # default playbooks, car_missing's remedy SLA one second
    strict.write_text(
        (ROOT / "makegood" / "playbooks" / "default.toml")
        .read_text()
        .replace(
            "[playbooks.car_missing.sla]\n",
            '[playbooks.car_missing.sla]\nremedy_offer = "PT1S"\n# ',
            1,
        )
    )
    d.env["MAKEGOOD_PLAYBOOKS"] = str(strict)
    await d.restart_api()  # the API opens cases with the playbooks it started with
    await d.ok("open", str(TICKETS / "s1-missing-car.json"))
    await d.ok("open", str(TICKETS / "s5-wrong-drink.json"))
    await d.until("case-T-1001", lambda s: any(c.breached_at for c in s.slas), "breach")
    await d.until("case-T-3001", lambda s: s.stage == "closed", "closed")

    async def listed(*args: str, want: int = 1) -> list[str]:
        """Visibility follows a case closely, not instantly: wait (bounded) for `want` rows."""
        for _ in range(50):
            rows = [r["case_id"] for r in json.loads(await d.ok("list", "--json", *args))]
            if len(rows) >= want:
                break
            await asyncio.sleep(0.1)
        return sorted(rows)

    assert await listed("--sla", "breached") == ["case-T-1001"]
    assert await listed("--stage", "diagnose") == ["case-T-1001"]
    assert await listed("--stage", "closed") == ["case-T-3001"]
    assert await listed("--stage", "remedy", want=0) == []
    table = await d.ok("list", "--open")
    assert "case-T-1001" in table and "breached" in table and "case-T-3001" not in table
    bad = await d.cli("list", "--stage", "limbo")
    assert bad.code == 2 and "invalid choice: 'limbo'" in bad.err

    assert "case-T-1001" in await d.ok("list", "--open", token=AUDITOR)

    to_auditor = await d.cli("assign", "case-T-1001", "auditor:ann", token=MANAGER)
    assert to_auditor.code == 2 and to_auditor.err == (
        "makegood: refused, nothing was started or sent:\n"
        "  to: a case is owned by an agent or a manager, not an auditor\n"
    )
    await d.ok("assign", "case-T-1001", "agent:sam", token=MANAGER)
    await d.ok("cancel", "case-T-1001", "member found another car")
    status = await d.until("case-T-1001", lambda s: s.stage == "closed", "cancelled")
    assert status.resolution == "cancelled" and status.owner == "agent:sam"
    acted = [(e.kind, e.by) for e in status.events if e.by]
    assert acted == [("assigned", "manager:dev-manager"), ("cancelled", "agent:dev-agent")]
    assert await listed("--stage", "closed", want=2) == ["case-T-1001", "case-T-3001"]
    released = await d.rows("SELECT status FROM bookings WHERE id = 'R-1001'")
    assert released == [{"status": "released"}]


async def test_auditors_export_replay_timeline_and_reconcile_from_the_server(
    deployment: Deployment,
    tmp_path: Path,
) -> None:
    d = deployment
    await d.ok("open", str(TICKETS / "s5-wrong-drink.json"))
    await d.ok("open", str(TICKETS / "s1-missing-car.json"))  # still running: not exported
    await d.until("case-T-3001", lambda s: s.stage == "closed", "closed")
    await d.question("case-T-1001", "locate-CAR-1-1")

    replayed = await d.ok("replay", "case-T-3001", "case-T-1001", "-v")
    assert "2 of 2 histories reproduced" in replayed
    timeline = await d.ok("timeline", "case-T-3001")
    assert "refund of 4.80 USD" in timeline and "case-T-3001:refund" in timeline
    balanced = await d.ok("reconcile")
    assert "1 payments in histories, 1 in the ledger, 0 difference(s)" in balanced

    archive = tmp_path / "archive"
    exported = await d.ok("export", str(archive))
    assert exported.startswith("1 closed workflow histories")
    manifest = json.loads((archive / "manifest.json").read_text())
    assert [e["workflow_id"] for e in manifest["entries"]] == ["case-T-3001"]
    # The same format as the temporal CLI's own export.
    proc = await asyncio.create_subprocess_exec(
        binary("temporal"),
        "workflow",
        "show",
        "--output",
        "json",
        "-w",
        "case-T-3001",
        "--address",
        d.env["TEMPORAL_ADDRESS"],
        stdout=asyncio.subprocess.PIPE,
    )
    cli_json, _ = await proc.communicate()
    ours = WorkflowHistory.from_json("case-T-3001", (archive / "case-T-3001.json").read_text())
    theirs = WorkflowHistory.from_json("case-T-3001", cli_json.decode())
    assert ours.events == theirs.events
    offline = await d.ok("replay", "--dir", str(archive))
    assert "1 of 1 histories reproduced" in offline

    store = await LocalStore(d.data / "adapters.sqlite").open()
    try:
        await store.conn.execute("UPDATE payments SET amount = '9.99'")
    finally:
        await store.close()
    unbalanced = await d.cli("reconcile", "case-T-3001")
    assert unbalanced.code == 1
    assert (
        "amount_mismatch" in unbalanced.out
        and "history says 4.80 USD, the ledger 9.99 USD" in unbalanced.out
    )
