"""Case ids, call-back ids and idempotency keys: built and parsed here and nowhere else.

A case's workflow id is `case-<ticket id>`; its call-back child is `<case id>:callback`; every
side effect's idempotency key is `<workflow id>:<logical step>`. Ticket ids never contain a
colon (see `ticket.SafeId`), so the case id is always what comes before the first colon.
"""

from __future__ import annotations

from typing import Final

CASE_PREFIX: Final = "case-"
CALLBACK_SUFFIX: Final = ":callback"


def case_id(ticket_id: str) -> str:
    """The workflow id of the case a ticket opens: a duplicate ticket finds the same case."""
    return f"{CASE_PREFIX}{ticket_id}"


def callback_id(case_id: str) -> str:
    """The call-back workflow of a case: where telephony status callbacks are delivered."""
    return f"{case_id}{CALLBACK_SUFFIX}"


def is_callback(workflow_id: str) -> bool:
    return workflow_id.endswith(CALLBACK_SUFFIX)


def case_of(workflow_id_or_key: str) -> str:
    """The case a workflow id (the case's or its call-back's) or an idempotency key belongs to."""
    return workflow_id_or_key.partition(":")[0]


def idempotency_key(workflow_id: str, step: str) -> str:
    """The same on every attempt of a step, so a retry cannot act twice."""
    return f"{workflow_id}:{step}"


def step_of(key: str) -> str:
    """The logical step of a key, relative to its case (`callback:call:1` for a call-back's)."""
    return key.partition(":")[2]


def step_in(key: str, workflow_id: str) -> str | None:
    """The step of a key made by this workflow; None for a key of any other workflow."""
    prefix = f"{workflow_id}:"
    return key[len(prefix) :] if key.startswith(prefix) else None
