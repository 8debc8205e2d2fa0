"""People's commands: file a ticket, read where cases stand, and act on a running case.

Every one is a request to the API, made with the caller's token: the API's role table decides
whether the token's holder may do it, and records them as the action's `by`. None of them
holds any Temporal credential.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from makegood.cli.base import Invalid, Subcommands, print_json
from makegood.cli.client import Api, case_path
from makegood.cli.render import render_status
from makegood.domain.case import CaseStatus, SlaLevel, Stage
from makegood.domain.errors import field_errors
from makegood.domain.money import Money
from makegood.domain.ticket import Ticket

# The API's own pattern for a case id in a path: anything else could not name a case.
_CASE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,80}")


def case_id(text: str) -> str:
    """A case id as an argument type: a malformed one is a usage error, before anything is sent."""
    if not _CASE_ID.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"expected a case id such as case-T-1001 (letters, digits, '.', '_', ':' or '-'), "
            f"got {text[:80]!r}"
        )
    return text


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except OSError as err:
        raise Invalid([f"(file): cannot read {path}: {err.strerror}"]) from None


def _fields(**values: Any) -> dict[str, Any]:
    """A request body without the options that were not given."""
    return {k: v for k, v in values.items() if v is not None}


async def _act(api: Api, case: str, route: str, body: dict[str, Any]) -> None:
    accepted = await api.post(case_path(case, route), body)
    print(f"{case}: {accepted['detail']}")


async def _status(api: Api, case: str) -> CaseStatus:
    return CaseStatus.model_validate(await api.get(case_path(case)))


# No ticket nests more than a few levels; far deeper JSON cannot even be parsed (RecursionError)
# or sent (its encoding recurses too), so it is refused here, before anything is sent.
MAX_DEPTH = 100


def _depth(value: Any) -> int:
    """How deeply JSON containers nest in `value`, counted without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return deepest


def _ticket_json(raw: str) -> Any:
    deep = f"(body): JSON nested more than {MAX_DEPTH} levels deep is not read"
    try:
        ticket = json.loads(raw)
    except json.JSONDecodeError as err:
        raise Invalid(
            [f"(body): not valid JSON: {err.msg} at line {err.lineno} column {err.colno}"]
        ) from None
    except RecursionError:
        raise Invalid([deep]) from None
    if _depth(ticket) > MAX_DEPTH:
        raise Invalid([deep])
    return ticket


async def cmd_open(api: Api, args: argparse.Namespace) -> None:
    ticket = _ticket_json(_read(args.file))
    try:  # what can be checked here is, before anything is sent (the API checks the rest)
        Ticket.model_validate(ticket)
    except ValidationError as err:
        raise Invalid(field_errors(err)) from None
    opened = await api.post("/cases", ticket)  # the API validates it and names every problem
    if args.json:
        print_json({k: opened[k] for k in ("case_id", "created", "run_id")})
    elif opened["created"]:
        print(
            f"opened {opened['case_id']} for ticket {ticket['id']} "
            f"({ticket['incident']['kind']}, playbooks {opened.get('playbook_version')})"
        )
    else:
        known = f" ({opened['note']})" if opened.get("note") else ""
        print(
            f"ticket {ticket['id']} already has case {opened['case_id']}{known}; "
            "nothing new was started"
        )


async def cmd_status(api: Api, args: argparse.Namespace) -> None:
    status = await _status(api, args.case)
    if args.json:
        print(status.model_dump_json(indent=2))
    else:
        print(render_status(status, events=args.events))


def _when(text: str | None) -> str:
    return datetime.fromisoformat(text).strftime("%Y-%m-%d %H:%M:%S") if text else "-"


async def cmd_list(api: Api, args: argparse.Namespace) -> None:
    rows = await api.get(
        "/cases",
        open="true" if args.open else None,
        stage=args.stage,
        sla=args.sla,
        limit=args.limit,
    )
    if args.json:
        print_json(rows)
        return
    if not rows:
        print("no open cases" if args.open else "no cases")
        return
    print(
        f"{'CASE':<28} {'KIND':<15} {'STAGE':<12} {'SLA':<9} {'STATUS':<10} {'STARTED':<20} CLOSED"
    )
    for row in rows:
        print(
            f"{row['case_id']:<28} {row['kind'] or '-':<15} {row['stage'] or '-':<12} "
            f"{row['sla'] or '-':<9} {row['status']:<10} {_when(row['started']):<20} "
            f"{_when(row['closed'])}"
        )


async def cmd_answer(api: Api, args: argparse.Namespace) -> None:
    body = _fields(
        question_id=args.question, answer=args.answer, value=args.value, comment=args.comment
    )
    await _act(api, args.case, "answers", body)


async def cmd_claim(api: Api, args: argparse.Namespace) -> None:
    currency = args.currency or (await _status(api, args.case)).discretion_limit.currency
    try:
        amount = Money.model_validate({"amount": args.amount, "currency": currency})
    except ValidationError as err:
        raise Invalid(field_errors(err)) from None  # "amount: must not be negative (got -5)"
    receipt, digest = None, None
    if args.receipt is not None:
        data = _read_file(args.receipt)  # before anything is sent: a typo uploads nothing
        uploaded = await api.upload(case_path(args.case, "receipts"), data)
        receipt, digest = Path(args.receipt).name[:200], uploaded["sha256"]
        again = "" if uploaded["created"] else ", uploaded before"
        print(f"{args.case}: receipt {receipt} stored as sha256 {digest[:12]}...{again}")
    body = _fields(
        claim_id=args.claim_id,
        description=args.description,
        amount=amount.model_dump(mode="json"),
        receipt=receipt,
        receipt_sha256=digest,
    )
    await _act(api, args.case, "claims", body)


def _read_file(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise Invalid([f"--receipt: cannot read {path}: {err.strerror}"]) from None


async def cmd_approve(api: Api, args: argparse.Namespace) -> None:
    amount = None
    if args.amount is not None:
        currency = (await _status(api, args.case)).discretion_limit.currency
        try:
            amount = Money.model_validate({"amount": args.amount, "currency": currency})
        except ValidationError as err:
            raise Invalid(field_errors(err, "--amount")) from None
    body = _fields(
        request_id=args.request,
        approved=not args.reject,
        note=args.note,
        amount=amount.model_dump(mode="json") if amount else None,
    )
    await _act(api, args.case, "approvals", body)


async def cmd_note(api: Api, args: argparse.Namespace) -> None:
    await _act(api, args.case, "notes", {"text": args.text})


async def cmd_assign(api: Api, args: argparse.Namespace) -> None:
    await _act(api, args.case, "assign", _fields(to=args.to, contact=args.contact))


async def cmd_escalate(api: Api, args: argparse.Namespace) -> None:
    await _act(api, args.case, "escalate", {"reason": args.reason})


async def cmd_cancel(api: Api, args: argparse.Namespace) -> None:
    await _act(api, args.case, "cancel", {"reason": args.reason})


async def cmd_call_status(api: Api, args: argparse.Namespace) -> None:
    from makegood.settings import Settings  # the provider's secret, as the API reads it

    delivery = await api.signed(
        "/callbacks/telephony",
        {"case_id": args.case, "call_id": args.call_id, "status": args.status},
        secret=Settings().telephony_webhook_secret.get_secret_value(),
        delivery_id=args.event_id or f"cli-{uuid.uuid4().hex[:12]}",
    )
    if delivery["delivered"]:
        print(f"{args.case}: call {args.call_id} reported {args.status}")
    else:
        print(f"{args.case}: the call-back has already finished; report ignored")


def add_commands(sub: Subcommands) -> None:
    p = sub.add_api("open", cmd_open, "file a ticket (JSON file, or - for stdin) and open its case")
    p.add_argument("file")
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    p = sub.add_api("status", cmd_status, "show where a case stands and what it is waiting for")
    p.add_argument("case", type=case_id)
    p.add_argument("--json", action="store_true", help="the full status as JSON")
    p.add_argument(
        "--events",
        type=int,
        default=12,
        metavar="N",
        help="how many of the latest events to show (default 12, 0 for all)",
    )

    p = sub.add_api("list", cmd_list, "list cases, newest first")
    p.add_argument("--open", action="store_true", help="only cases still running")
    p.add_argument(
        "--stage", choices=[stage.value for stage in Stage], help="only cases at this stage"
    )
    p.add_argument(
        "--sla",
        choices=[level.value for level in SlaLevel],
        help="only cases whose worst SLA clock is at this level",
    )
    p.add_argument("--limit", type=int, default=100, help="at most this many (1-1000)")
    p.add_argument("--json", action="store_true")

    p = sub.add_api(
        "answer", cmd_answer, "answer the open question on the customer's behalf (agent, manager)"
    )
    p.add_argument("case", type=case_id)
    p.add_argument("question", help="the question id, as `status` shows it")
    p.add_argument("answer", help="one of the question's choices")
    p.add_argument("--value", help="e.g. the SKU of a chosen substitute")
    p.add_argument("--comment")

    p = sub.add_api(
        "claim", cmd_claim, "submit the customer's expense claim for reimbursement (agent, manager)"
    )
    p.add_argument("case", type=case_id)
    p.add_argument("claim_id", help="your reference for the claim, e.g. taxi-1")
    p.add_argument("amount", help="decimal amount, e.g. 35.00")
    p.add_argument("description")
    p.add_argument("--currency", help="ISO 4217 code (default: the case's currency)")
    p.add_argument(
        "--receipt",
        metavar="FILE",
        help="the receipt file (PDF, PNG, JPEG, WebP or HEIC): uploaded, then named by the claim",
    )

    p = sub.add_api(
        "approve",
        cmd_approve,
        "decide the pending approval, or --reject it with a --note saying why (a manager's "
        "token, or an ops lead's once the approval is escalated to them)",
    )
    p.add_argument("case", type=case_id)
    p.add_argument("request", help="the approval id, as `status` shows it")
    decision = p.add_mutually_exclusive_group()
    decision.add_argument("--reject", action="store_true")
    decision.add_argument(
        "--amount", help="approve only this much of what waits (the rest is declined; --note why)"
    )
    p.add_argument(
        "--note", help="why: needed to reject or to approve part, told to the customer for money"
    )

    p = sub.add_api("note", cmd_note, "add a note to the case (agent, manager)")
    p.add_argument("case", type=case_id)
    p.add_argument("text")

    p = sub.add_api("assign", cmd_assign, "make an agent or manager the owner of a case")
    p.add_argument("case", type=case_id)
    p.add_argument("to", metavar="ROLE:ID", help="the new owner, e.g. agent:sam")
    p.add_argument(
        "--contact",
        metavar="EMAIL",
        help="the owner's address for SLA warnings (default: the ops contact)",
    )

    p = sub.add_api("escalate", cmd_escalate, "hand a case to the ops contact now, with a reason")
    p.add_argument("case", type=case_id)
    p.add_argument("reason")

    p = sub.add_api(
        "cancel", cmd_cancel, "close a case with a reason: reservations released, the customer told"
    )
    p.add_argument("case", type=case_id)
    p.add_argument("reason")

    p = sub.add_api(
        "call-status",
        cmd_call_status,
        "simulate the telephony provider: a status callback for a call-back, signed with "
        "MAKEGOOD_TELEPHONY_WEBHOOK_SECRET and sent to /callbacks/telephony (no token needed)",
    )
    p.add_argument("case", type=case_id)
    p.add_argument("call_id", help="the call id, as `status` shows it")
    p.add_argument("status", choices=["completed", "dropped", "no_answer"])
    p.add_argument("--event-id", help="the provider's delivery id (a repeated one is refused)")
