"""The case commands: file a ticket, read where cases stand, and act on a running case."""

from __future__ import annotations

import argparse
import sys
import uuid

from pydantic import ValidationError
from temporalio.client import Client

from makegood.cases import (
    Invalid,
    build,
    case_status,
    list_cases,
    open_case,
    parse_ticket,
    report_call,
    send,
)
from makegood.cli.base import Subcommands, print_json
from makegood.cli.render import render_status
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
from makegood.domain.case import CallStatus, SlaLevel, Stage
from makegood.domain.contract import Action
from makegood.domain.errors import field_errors
from makegood.domain.money import Money
from makegood.settings import Settings


def actor(text: str) -> Actor:
    """`ROLE:ID` as an argument type: a bad one is a usage error, before anything is sent."""
    try:
        return Actor.parse(text)
    except (ValueError, ValidationError) as err:
        problems = field_errors(err) if isinstance(err, ValidationError) else [str(err)]
        raise argparse.ArgumentTypeError("; ".join(problems)) from None


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except OSError as err:
        raise Invalid([f"(file): cannot read {path}: {err.strerror}"]) from None


async def _send(client: Client, case_id: str, action: Action) -> None:
    accepted = await send(client, case_id, action)
    print(f"{case_id}: {accepted.detail}")


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
        print_json({"case_id": opened.case_id, "created": opened.created, "run_id": opened.run_id})
    elif opened.created:
        print(
            f"opened {opened.case_id} for ticket {ticket.id} "
            f"({ticket.incident.kind.value}, playbooks {settings.playbook_set.version})"
        )
    else:
        print(f"ticket {ticket.id} already has case {opened.case_id}; nothing new was started")


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
        print_json([row.model_dump(mode="json") for row in rows])
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
    await _send(client, args.case, build(AgentNote, text=args.text, by=args.by))


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


def add_commands(sub: Subcommands) -> None:
    p = sub.add("open", cmd_open, "file a ticket (JSON file, or - for stdin) and open its case")
    p.add_argument("file")
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    p = sub.add("status", cmd_status, "show where a case stands and what it is waiting for")
    p.add_argument("case")
    p.add_argument("--json", action="store_true", help="the full status as JSON")
    p.add_argument(
        "--events",
        type=int,
        default=12,
        metavar="N",
        help="how many of the latest events to show (default 12, 0 for all)",
    )

    p = sub.add("list", cmd_list, "list cases, newest first")
    p.add_argument("--open", action="store_true", help="only cases still running")
    p.add_argument(
        "--stage", choices=[stage.value for stage in Stage], help="only cases at this stage"
    )
    p.add_argument(
        "--sla",
        choices=[level.value for level in SlaLevel],
        help="only cases whose worst SLA clock is at this level",
    )
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--json", action="store_true")

    p = sub.add("answer", cmd_answer, "record the customer's answer to the open question")
    p.add_argument("case")
    p.add_argument("question", help="the question id, as `status` shows it")
    p.add_argument("answer", help="one of the question's choices")
    p.add_argument("--value", help="e.g. the SKU of a chosen substitute")
    p.add_argument("--comment")
    p.add_argument(
        "--as",
        dest="by",
        type=actor,
        metavar="ROLE:ID",
        help="who answers (default: the case's customer); agent:ID on their behalf",
    )

    p = sub.add("claim", cmd_claim, "submit an expense claim for reimbursement")
    p.add_argument("case")
    p.add_argument("claim_id", help="your reference for the claim, e.g. taxi-1")
    p.add_argument("amount", help="decimal amount, e.g. 35.00")
    p.add_argument("description")
    p.add_argument("--currency", help="ISO 4217 code (default: the case's currency)")
    p.add_argument("--receipt", help="receipt reference or file name")
    p.add_argument(
        "--as",
        dest="by",
        type=actor,
        metavar="ROLE:ID",
        help="who claims (default: the case's customer)",
    )

    p = sub.add("approve", cmd_approve, "decide the pending approval (approve, or --reject)")
    p.add_argument("case")
    p.add_argument("request", help="the approval id, as `status` shows it")
    p.add_argument("--reject", action="store_true")
    p.add_argument("--note")
    p.add_argument("--as", dest="by", type=actor, metavar="manager:ID", required=True)

    p = sub.add("note", cmd_note, "add an agent note to the case")
    p.add_argument("case")
    p.add_argument("text")
    p.add_argument("--as", dest="by", type=actor, metavar="ROLE:ID", required=True)

    p = sub.add(
        "call-status",
        cmd_call_status,
        "report a telephony status for a call-back (as the provider's callback would)",
    )
    p.add_argument("case")
    p.add_argument("call_id", help="the call id, as `status` shows it")
    p.add_argument("status", choices=["completed", "dropped", "no_answer"])
    p.add_argument("--event-id", help="the provider's delivery id (duplicates are ignored)")

    p = sub.add("assign", cmd_assign, "make an agent or manager the owner of a case")
    p.add_argument("case")
    p.add_argument("to", type=actor, metavar="ROLE:ID", help="the new owner, e.g. agent:sam")
    p.add_argument(
        "--contact",
        metavar="EMAIL",
        help="the owner's address for SLA warnings (default: the ops contact)",
    )
    p.add_argument("--as", dest="by", type=actor, metavar="ROLE:ID", required=True)

    p = sub.add("escalate", cmd_escalate, "hand a case to the ops contact now, with a reason")
    p.add_argument("case")
    p.add_argument("reason")
    p.add_argument("--as", dest="by", type=actor, metavar="ROLE:ID", required=True)

    p = sub.add(
        "cancel", cmd_cancel, "close a case with a reason: reservations released, the customer told"
    )
    p.add_argument("case")
    p.add_argument("reason")
    p.add_argument("--as", dest="by", type=actor, metavar="ROLE:ID", required=True)
