"""Compare the money movements in case histories with the payment provider's ledger."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter

from makegood.domain import calls, ids
from makegood.domain.money import Money
from makegood.domain.provider import LedgerEntry, PaymentReceipt, PaymentRequest


@dataclass(frozen=True)
class Movement:
    """A payment the engine made, as its history records it."""

    case_id: str
    key: str
    kind: str
    amount: Money
    payment_id: str


Problem = Literal["missing_in_ledger", "not_in_history", "duplicated", "amount_mismatch"]


@dataclass(frozen=True)
class Difference:
    problem: Problem
    key: str
    case_id: str
    history: str | None
    ledger: str | None
    detail: str


def movements(histories: Iterable[WorkflowHistory]) -> list[Movement]:
    """Every completed payment activity, with the request it was made for."""
    convert = pydantic_data_converter.payload_converter
    found: list[Movement] = []
    for history in histories:
        requests: dict[int, PaymentRequest] = {}
        for event in history.events:
            if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                attrs = event.activity_task_scheduled_event_attributes
                if attrs.activity_type.name == calls.MAKE_PAYMENT.name:
                    requests[event.event_id] = convert.from_payloads(
                        list(attrs.input.payloads), [calls.MAKE_PAYMENT.request]
                    )[0]
            elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
                done = event.activity_task_completed_event_attributes
                req = requests.get(done.scheduled_event_id)
                if req is None:
                    continue
                receipt: PaymentReceipt = convert.from_payloads(
                    list(done.result.payloads), [calls.MAKE_PAYMENT.result]
                )[0]
                case_id = ids.case_of(history.workflow_id)
                found.append(
                    Movement(
                        case_id,
                        ids.idempotency_key(history.workflow_id, req.step),
                        req.kind,
                        req.amount,
                        receipt.payment_id,
                    )
                )
    return found


def reconcile(moves: list[Movement], ledger: list[LedgerEntry]) -> list[Difference]:
    """Every way the two disagree; nothing when the books match."""
    by_key_history: dict[str, list[Movement]] = defaultdict(list)
    by_key_ledger: dict[str, list[LedgerEntry]] = defaultdict(list)
    for m in moves:
        by_key_history[m.key].append(m)
    for entry in ledger:
        by_key_ledger[entry.idempotency_key].append(entry)
    diffs: list[Difference] = []
    for key in sorted(set(by_key_history) | set(by_key_ledger)):
        hist, books = by_key_history.get(key, []), by_key_ledger.get(key, [])
        case_id = hist[0].case_id if hist else books[0].case_id
        h = str(hist[0].amount) if hist else None
        b = str(books[0].amount) if books else None
        if not books:
            diffs.append(
                Difference(
                    "missing_in_ledger",
                    key,
                    case_id,
                    h,
                    None,
                    f"the case paid {h} ({hist[0].payment_id}) but the "
                    "provider's ledger has no such payment",
                )
            )
            continue
        if not hist:
            diffs.append(
                Difference(
                    "not_in_history",
                    key,
                    case_id,
                    None,
                    b,
                    f"the ledger shows {b} ({books[0].payment_id}) that no case history made",
                )
            )
            continue
        if len(books) > 1 or len(hist) > 1:
            diffs.append(
                Difference(
                    "duplicated",
                    key,
                    case_id,
                    h,
                    b,
                    f"{len(hist)} in history, {len(books)} in the ledger",
                )
            )
        if hist[0].amount != books[0].amount:
            diffs.append(
                Difference(
                    "amount_mismatch", key, case_id, h, b, f"history says {h}, the ledger {b}"
                )
            )
    return diffs
