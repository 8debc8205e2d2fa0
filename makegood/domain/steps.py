"""Logical step names. With the workflow id (see `ids.idempotency_key`) each one is the
idempotency key of a side effect, so these strings are a wire contract: renaming one would
let a running case pay or write twice. Add new ones; never change an existing one.

`ops_purpose` classifies a message by its step alone (never by its wording), which is how the
audit timeline tells an approval request from an escalation or an SLA warning.
"""

from __future__ import annotations

from typing import Final, Literal

# ---- messages to the customer (sent per channel: `<step>:<channel>`)
ACK: Final = "ack"
REMEDY: Final = "remedy"
EXCHANGE: Final = "exchange"
CANCELLED: Final = "cancelled"
OWNERSHIP: Final = "ownership"  # what the case is about could not be verified as theirs
TAKEN_OVER: Final = "taken-over"  # the case could not go on by itself: a person has it now
HANDED_OVER: Final = "handed-over"  # the remedy ran out: a person fixes it, the case goes on
CLOSED_UNANSWERED: Final = "closed-unanswered"  # the follow-up went unanswered: a closing note


def compensation_pending(request_id: str) -> str:
    """What was paid at once, and that the rest waits for the approval `request_id`."""
    return f"compensation-pending:{request_id}"


def on_channel(step: str, channel: str) -> str:
    return f"{step}:{channel}"


def ask(question_id: str, attempt: int = 0) -> str:
    """A question, and its reminders (attempt 1, 2...)."""
    return f"ask:{question_id}" if attempt == 0 else f"ask:{question_id}:reminder-{attempt}"


def asked_question(step: str) -> str | None:
    """The question a customer message's step (`ask:<id>[:reminder-<n>]:<channel>`) asks,
    or None for any other message."""
    head, _, rest = step.partition(":")
    if head != "ask" or ":" not in rest:
        return None
    asked = rest.rpartition(":")[0]  # without the channel
    question, _, reminder = asked.rpartition(":")
    return question if question and reminder.startswith("reminder-") else asked


def confirm(round_: int) -> str:
    return "confirm" if round_ == 1 else f"confirm:{round_}"


# ---- product control
REPLACE: Final = "replace"
REPAIR: Final = "repair"
RETURN_LABEL: Final = "return-label"
SHIP: Final = "ship"
REMAKE: Final = "remake"
SUBSTITUTE: Final = "substitute"


def rebook(attempt: int) -> str:
    return f"rebook:{attempt}"


def locate(vehicle: str, attempt: int) -> str:
    return f"locate:{vehicle}:{attempt}"


def release(booking_id: str) -> str:
    return f"release:{booking_id}"


# ---- a call-back's steps (under the call-back workflow's id)
CALL_BOOKED: Final = "call-booked"
HANDED_OFF: Final = "handed-off"


def call(number: int) -> str:
    return f"call:{number}"


def redial(number: int) -> str:
    return f"redial-{number}"


def scheduling_trouble(number: int) -> str:
    return f"scheduling-{number}"


# ---- compensation
REFUND: Final = "refund"
WAIVER: Final = "waiver"
COUPON: Final = "coupon"


def reimburse(claim_id: str) -> str:
    return f"reimburse:{claim_id}"


def perk(name: str) -> str:
    return f"perk:{name}"


def perk_of(step: str) -> str:
    """The perk a `perk:<name>` step grants."""
    return step.partition(":")[2]


def reopen_coupon(round_: int) -> str:
    return f"coupon:reopen-{round_}"


# ---- messages to people in operations
OpsPurpose = Literal["approval", "escalation", "sla_warning", "sla_breach"]


def sla_warning(label: str) -> str:
    return f"sla:{label}:warning"


def sla_breach(label: str) -> str:
    return f"sla:{label}:breach"


def approval(request_id: str) -> str:
    return f"approval:{request_id}"


def approval_escalated(request_id: str, level: int) -> str:
    return f"approval:{request_id}:level-{level}"


def approval_reminder(request_id: str, level: int, number: int) -> str:
    """A reminder to the role an approval is with (its request, once more)."""
    return f"approval:{request_id}:level-{level}:reminder-{number}"


def approval_overdue(request_id: str) -> str:
    """The chain ran out undecided and the playbook says wait: it stays with the last role."""
    return f"approval:{request_id}:overdue"


def in_limit_part(step: str) -> str:
    """The part of a compensation item paid at once, within the frontline limit."""
    return f"{step}:within-limit"


def approved_part(step: str) -> str:
    """The part of a compensation item a partial approval grants (the rest is declined)."""
    return f"{step}:approved-part"


def approval_expired(request_id: str) -> str:
    return f"approval:{request_id}:expired"


def escalation(number: int) -> str:
    return f"escalation:{number}"


def ops_purpose(step: str) -> OpsPurpose | None:
    """What a message to operations is for, from its step; None for a customer's message."""
    head, _, rest = step.partition(":")
    if head == "sla":
        return "sla_warning" if rest.endswith(":warning") else "sla_breach"
    if head == "approval":
        return "approval" if ":" not in rest or ":reminder-" in rest else "escalation"
    if head == "escalation":
        return "escalation"
    return None
