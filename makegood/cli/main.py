"""makegood: the operator's command line. Files tickets and acts on running cases.

    makegood dev                                            # dev server + worker + API
    makegood worker [--api] / makegood api                  # the processes, one job each

    makegood open examples/tickets/s1-missing-car.json     # or `-` for stdin
    makegood status case-T-1001 [--json]
    makegood list [--open] [--json]
    makegood answer case-T-1001 locate-CAR-1-1 not_there
    makegood claim case-T-1001 taxi-1 35.00 "Taxi to the hotel"
    makegood approve case-T-1001 compensation --as manager:mia [--reject] [--note ...]
    makegood note case-T-1001 "Customer prefers a call after 5pm" --as agent:sam
    makegood call-status case-T-6001 call_0123abcd dropped   # as the telephony provider

Exit status: 0 done, 1 refused by the case (the reason is printed), 2 bad input or bad
Temporal connection settings (nothing was sent), 3 Temporal unreachable.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from temporalio.client import Client, WorkflowHistory

from makegood.adapters.local.providers import LocalPayments
from makegood.adapters.local.store import LocalStore
from makegood.audit.archive import read_folder
from makegood.audit.reconcile import movements, reconcile
from makegood.audit.replay import replay_all, terminal_progress
from makegood.audit.server import case_histories, export_closed, visibility_query
from makegood.audit.server import histories as server_histories
from makegood.audit.timeline import as_html, as_json, as_markdown, as_text, timeline
from makegood.cases import (
    CaseNotFound,
    Invalid,
    Refused,
    build,
    case_status,
    list_cases,
    open_case,
    parse_ticket,
    report_call,
    send,
)
from makegood.cli.render import render_status
from makegood.connection import ConnectionConfigError, connect, load_connection
from makegood.domain import ids
from makegood.domain.actions import (
    Actor,
    AgentNote,
    ApprovalDecision,
    AssignCase,
    CancelCase,
    CustomerAnswer,
    EscalateCase,
    ExpenseClaim,
)
from makegood.domain.case import CallStatus
from makegood.domain.contract import Action
from makegood.domain.errors import field_errors
from makegood.domain.money import Money
from makegood.registry import build_replayer
from makegood.serve import serve
from makegood.settings import Settings

EXIT_REFUSED, EXIT_BAD_INPUT, EXIT_UNREACHABLE = 1, 2, 3


def _actor(text: str) -> Actor:
    try:
        return Actor.parse(text)
    except (ValueError, ValidationError) as err:
        problems = field_errors(err) if isinstance(err, ValidationError) else [str(err)]
        raise argparse.ArgumentTypeError("; ".join(problems)) from None


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


async def _send(client: Client, case_id: str, action: Action) -> None:
    accepted = await send(client, case_id, action)
    print(f"{case_id}: {accepted.detail}")


# ---------------------------------------------------------------------------- commands
async def cmd_open(client: Client, settings: Settings, args: argparse.Namespace) -> None:
    raw = sys.stdin.read() if args.file == "-" else _read(args.file)
    ticket = parse_ticket(raw, settings.playbook_set)
    opened = await open_case(
        client,
        ticket,
        settings.playbook_set,
        task_queue=settings.task_queue,
        ops_contact=settings.ops_contact,
    )
    if args.json:
        _print_json({"case_id": opened.case_id, "created": opened.created, "run_id": opened.run_id})
    elif opened.created:
        print(
            f"opened {opened.case_id} for ticket {ticket.id} "
            f"({ticket.incident.kind.value}, playbooks {settings.playbook_set.version})"
        )
    else:
        print(f"ticket {ticket.id} already has case {opened.case_id}; nothing new was started")


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except OSError as err:
        raise Invalid([f"(file): cannot read {path}: {err.strerror}"]) from None


async def cmd_status(client: Client, settings: Settings, args: argparse.Namespace) -> None:
    status = await case_status(client, args.case)
    if args.json:
        print(status.model_dump_json(indent=2))
    else:
        print(render_status(status, events=args.events))


async def cmd_list(client: Client, settings: Settings, args: argparse.Namespace) -> None:
    rows = await list_cases(
        client, open_only=args.open, stage=args.stage, sla=args.sla, limit=args.limit
    )
    if args.json:
        _print_json([row.model_dump(mode="json") for row in rows])
        return
    if not rows:
        print("no open cases" if args.open else "no cases")
        return
    print(
        f"{'CASE':<28} {'KIND':<15} {'STAGE':<12} {'SLA':<9} {'STATUS':<10} {'STARTED':<20} CLOSED"
    )
    for row in rows:
        started = row.started.strftime("%Y-%m-%d %H:%M:%S") if row.started else "-"
        closed = row.closed.strftime("%Y-%m-%d %H:%M:%S") if row.closed else "-"
        print(
            f"{row.case_id:<28} {row.kind or '-':<15} {row.stage or '-':<12} "
            f"{row.sla or '-':<9} {row.status:<10} {started:<20} {closed}"
        )


async def cmd_answer(client: Client, settings: Settings, args: argparse.Namespace) -> None:
    by = args.by or Actor(id=(await case_status(client, args.case)).customer_id, role="customer")
    answer = build(
        CustomerAnswer,
        question_id=args.question,
        answer=args.answer,
        value=args.value,
        comment=args.comment,
        by=by,
    )
    await _send(client, args.case, answer)


async def cmd_claim(client: Client, settings: Settings, args: argparse.Namespace) -> None:
    status = None
    if args.by is None or args.currency is None:
        status = await case_status(client, args.case)
    by = args.by or Actor(id=status.customer_id, role="customer")  # type: ignore[union-attr]
    currency = args.currency or status.discretion_limit.currency  # type: ignore[union-attr]
    amount = build(Money, amount=args.amount, currency=currency)
    claim = build(
        ExpenseClaim,
        claim_id=args.claim_id,
        description=args.description,
        amount=amount,
        receipt=args.receipt,
        by=by,
    )
    await _send(client, args.case, claim)


async def cmd_approve(client: Client, settings: Settings, args: argparse.Namespace) -> None:
    decision = build(
        ApprovalDecision,
        request_id=args.request,
        approved=not args.reject,
        note=args.note,
        by=args.by,
    )
    await _send(client, args.case, decision)


async def cmd_note(client: Client, settings: Settings, args: argparse.Namespace) -> None:
    note = build(AgentNote, text=args.text, by=args.by)
    await _send(client, args.case, note)


async def cmd_call_status(client: Client, settings: Settings, args: argparse.Namespace) -> None:
    report = build(
        CallStatus,
        call_id=args.call_id,
        status=args.status,
        event_id=args.event_id or f"cli-{uuid.uuid4().hex[:12]}",
    )
    if await report_call(client, args.case, report):
        print(f"{args.case}: call {args.call_id} reported {args.status}")
    else:
        print(f"{args.case}: the call-back has already finished; report ignored")


async def cmd_assign(client: Client, settings: Settings, args: argparse.Namespace) -> None:
    await _send(client, args.case, build(AssignCase, to=args.to, contact=args.contact, by=args.by))


async def cmd_escalate(client: Client, settings: Settings, args: argparse.Namespace) -> None:
    await _send(client, args.case, build(EscalateCase, reason=args.reason, by=args.by))


async def cmd_cancel(client: Client, settings: Settings, args: argparse.Namespace) -> None:
    await _send(client, args.case, build(CancelCase, reason=args.reason, by=args.by))


# ---------------------------------------------------------------------------- audit
async def _histories(client: Client, args: argparse.Namespace) -> AsyncIterator[WorkflowHistory]:
    if args.dir:
        async for history in read_folder(Path(args.dir)):
            if not args.cases or ids.case_of(history.workflow_id) in args.cases:
                yield history
    else:
        async for history in server_histories(client, visibility_query(args.cases, args.query)):
            yield history


async def cmd_replay(client: Client, settings: Settings, args: argparse.Namespace) -> None:
    started = time.perf_counter()
    results = await replay_all(
        _histories(client, args),
        terminal_progress if sys.stderr.isatty() else None,
        replayer=build_replayer(quiet=True, sandbox=not args.no_sandbox),
    )
    elapsed = time.perf_counter() - started
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    failed = [r for r in results if not r.ok]
    for r in results if args.verbose else failed:
        where = f" at event {r.diverged_at}" if r.diverged_at else ""
        verdict = "reproduced" if r.ok else f"NON-DETERMINISTIC{where}: {r.error}"
        print(f"{r.workflow_id:<36} {r.workflow_type:<17} {r.events:>5} events  {verdict}")
    rate = len(results) / elapsed if elapsed else 0.0
    print(
        f"{len(results) - len(failed)} of {len(results)} histories reproduced by the current "
        f"code, {len(failed)} non-deterministic ({elapsed:.1f} s, {rate:.0f}/s)"
    )
    if not results:
        raise Refused("no histories matched")
    if failed:
        raise Refused(f"{len(failed)} history(ies) no longer replay: see above")


async def cmd_timeline(client: Client, settings: Settings, args: argparse.Namespace) -> None:
    if args.dir:
        found = [
            h async for h in read_folder(Path(args.dir)) if ids.case_of(h.workflow_id) == args.case
        ]
    else:
        found = await case_histories(client, args.case)
    if not found:
        raise CaseNotFound(args.case)
    lines = timeline(found)
    render = {
        "text": as_text,
        "json": as_json,
        "md": lambda ls: as_markdown(ls, args.case),
        "html": lambda ls: as_html(ls, args.case),
    }[args.format]
    print(render(lines))


async def cmd_export(client: Client, settings: Settings, args: argparse.Namespace) -> None:
    folder = Path(args.dir)
    manifest = await export_closed(client, folder, args.query, progress=sys.stderr.isatty())
    print(
        f"{len(manifest.entries)} closed workflow histories in {folder} "
        f"(manifest {folder / 'manifest.json'})"
    )


async def cmd_reconcile(client: Client, settings: Settings, args: argparse.Namespace) -> None:
    moves = movements([h async for h in _histories(client, args)])
    store = await LocalStore(settings.store_path).open()
    try:
        cases = sorted({m.case_id for m in moves}) if args.cases or args.query else None
        ledger = await LocalPayments(store).ledger(cases)
    finally:
        await store.close()
    diffs = reconcile(moves, ledger)
    for d in diffs:
        print(f"{d.problem:<18} {d.key:<48} {d.detail}")
    print(
        f"{len(moves)} payments in histories, {len(ledger)} in the ledger, "
        f"{len(diffs)} difference(s)"
    )
    if diffs:
        raise Refused(f"{len(diffs)} difference(s) between the histories and the ledger")


Command = Callable[[Client, Settings, argparse.Namespace], Awaitable[None]]


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="makegood",
        description=__doc__.splitlines()[0] if __doc__ else None,
        epilog="Configuration comes from MAKEGOOD_* environment variables, and the Temporal "
        "connection from the SDK's TEMPORAL_* variables and profiles; see README.",
    )
    sub = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Command, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(handler=handler)
        return p

    p = add("open", cmd_open, "file a ticket (JSON file, or - for stdin) and open its case")
    p.add_argument("file")
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    p = add("status", cmd_status, "show where a case stands and what it is waiting for")
    p.add_argument("case")
    p.add_argument("--json", action="store_true", help="the full status as JSON")
    p.add_argument(
        "--events",
        type=int,
        default=12,
        metavar="N",
        help="how many of the latest events to show (default 12, 0 for all)",
    )

    p = add("list", cmd_list, "list cases, newest first")
    p.add_argument("--open", action="store_true", help="only cases still running")
    p.add_argument("--stage", help="only cases at this stage, e.g. remedy")
    p.add_argument(
        "--sla",
        choices=["ok", "warning", "breached"],
        help="only cases whose worst SLA clock is at this level",
    )
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--json", action="store_true")

    p = add("answer", cmd_answer, "record the customer's answer to the open question")
    p.add_argument("case")
    p.add_argument("question", help="the question id, as `status` shows it")
    p.add_argument("answer", help="one of the question's choices")
    p.add_argument("--value", help="e.g. the SKU of a chosen substitute")
    p.add_argument("--comment")
    p.add_argument(
        "--as",
        dest="by",
        type=_actor,
        metavar="ROLE:ID",
        help="who answers (default: the case's customer); agent:ID on their behalf",
    )

    p = add("claim", cmd_claim, "submit an expense claim for reimbursement")
    p.add_argument("case")
    p.add_argument("claim_id", help="your reference for the claim, e.g. taxi-1")
    p.add_argument("amount", help="decimal amount, e.g. 35.00")
    p.add_argument("description")
    p.add_argument("--currency", help="ISO 4217 code (default: the case's currency)")
    p.add_argument("--receipt", help="receipt reference or file name")
    p.add_argument(
        "--as",
        dest="by",
        type=_actor,
        metavar="ROLE:ID",
        help="who claims (default: the case's customer)",
    )

    p = add("approve", cmd_approve, "decide the pending approval (approve, or --reject)")
    p.add_argument("case")
    p.add_argument("request", help="the approval id, as `status` shows it")
    p.add_argument("--reject", action="store_true")
    p.add_argument("--note")
    p.add_argument("--as", dest="by", type=_actor, metavar="manager:ID", required=True)

    p = add(
        "call-status",
        cmd_call_status,
        "report a telephony status for a call-back (as the provider's callback would)",
    )
    p.add_argument("case")
    p.add_argument("call_id", help="the call id, as `status` shows it")
    p.add_argument("status", choices=["completed", "dropped", "no_answer"])
    p.add_argument("--event-id", help="the provider's delivery id (duplicates are ignored)")

    p = add("assign", cmd_assign, "make an agent or manager the owner of a case")
    p.add_argument("case")
    p.add_argument("to", type=_actor, metavar="ROLE:ID", help="the new owner, e.g. agent:sam")
    p.add_argument(
        "--contact",
        metavar="EMAIL",
        help="the owner's address for SLA warnings (default: the ops contact)",
    )
    p.add_argument("--as", dest="by", type=_actor, metavar="ROLE:ID", required=True)

    p = add("escalate", cmd_escalate, "hand a case to the ops contact now, with a reason")
    p.add_argument("case")
    p.add_argument("reason")
    p.add_argument("--as", dest="by", type=_actor, metavar="ROLE:ID", required=True)

    p = add(
        "cancel", cmd_cancel, "close a case with a reason: reservations released, the customer told"
    )
    p.add_argument("case")
    p.add_argument("reason")
    p.add_argument("--as", dest="by", type=_actor, metavar="ROLE:ID", required=True)

    def sources(p: argparse.ArgumentParser) -> None:
        p.add_argument("cases", nargs="*", metavar="CASE", help="case ids (default: all)")
        p.add_argument("--query", help="a visibility query, e.g. 'CloseTime > \"2026-11-01\"'")
        p.add_argument("--dir", help="a folder written by `makegood export` instead of the server")

    p = add(
        "replay",
        cmd_replay,
        "prove the current code reproduces every decision in the "
        "cases' histories (exit 1 if any does not)",
    )
    sources(p)
    p.add_argument("-v", "--verbose", action="store_true", help="list every history")
    p.add_argument(
        "--no-sandbox",
        action="store_true",
        help="about 2x faster; the same determinism check, without the sandbox's "
        "guard against forbidden calls in workflow code",
    )

    p = add("timeline", cmd_timeline, "one case's history as a chronological account")
    p.add_argument("case")
    p.add_argument("--format", choices=["text", "json", "md", "html"], default="text")
    p.add_argument("--dir", help="read from an export folder instead of the server")

    p = add(
        "export",
        cmd_export,
        "write closed cases' histories (temporal CLI JSON format) "
        "and a manifest to a folder, for archiving",
    )
    p.add_argument("dir")
    p.add_argument("--query", help="narrow with a visibility query")

    p = add(
        "reconcile",
        cmd_reconcile,
        "compare the payments in histories with the payment "
        "provider's ledger (exit 1 on any difference)",
    )
    sources(p)

    p = add(
        "dev",
        cmd_serve,
        "run the embedded default: the local Temporal dev server "
        "(SQLite under MAKEGOOD_DATA_DIR, web UI), a worker and the API",
    )
    p.add_argument("--no-api", action="store_true", help="no intake API")
    p = add("worker", cmd_serve, "run a worker against TEMPORAL_ADDRESS until SIGINT/SIGTERM")
    p.add_argument("--api", action="store_true", help="serve the intake API from this process")
    add("api", cmd_serve, "serve the intake API alone (no workflows run in this process)")

    p = add("note", cmd_note, "add an agent note to the case")
    p.add_argument("case")
    p.add_argument("text")
    p.add_argument("--as", dest="by", type=_actor, metavar="ROLE:ID", required=True)
    return root


OFFLINE = {"replay", "timeline", "reconcile"}  # with --dir they need no server
SERVE = {"dev", "worker", "api"}  # processes that connect (or start a server) themselves


async def cmd_serve(client: Client | None, settings: Settings, args: argparse.Namespace) -> None:
    await serve(
        embedded=args.command == "dev",
        worker=args.command != "api",
        api=args.command == "api"
        or getattr(args, "api", False)
        or (args.command == "dev" and not args.no_api),
    )


async def _run(args: argparse.Namespace) -> int:
    if args.command in SERVE:
        await args.handler(None, None, args)
        return 0
    settings = Settings()
    client: Client | None = None
    if not (args.command in OFFLINE and args.dir):
        connection = load_connection(settings)
        try:
            client = await connect(connection)
        except RuntimeError as err:
            print(
                f"makegood: cannot reach Temporal at {connection.address} ({err}); "
                "is `make run` (or the worker) up?",
                file=sys.stderr,
            )
            return EXIT_UNREACHABLE
    try:
        await args.handler(client, settings, args)
    except Invalid as err:
        print("makegood: refused, nothing was started or sent:", file=sys.stderr)
        for problem in err.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Refused as err:
        print(f"makegood: {getattr(args, 'case', 'the case')} refused it: {err}", file=sys.stderr)
        return EXIT_REFUSED
    except CaseNotFound as err:
        print(f"makegood: {err}", file=sys.stderr)
        return EXIT_REFUSED
    except (FileNotFoundError, ValueError) as err:  # an export folder that is not one
        print(f"makegood: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        code = asyncio.run(_run(args))
    except ConnectionConfigError as err:  # from any command, the processes' too
        print(err, file=sys.stderr)
        code = EXIT_BAD_INPUT
    # The SDK's Rust runtime threads can abort a short-lived client process during interpreter
    # teardown (temporalio/sdk-python#300); nothing is left to clean up, so skip the teardown.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
