"""What the customer reads: every message, question and line of the written confirmation.

Pure functions of the case's facts, so the wording can be read, reviewed and tested in one
place. The workflow sends exactly these texts; changing one changes only what new messages
say (message texts are activity inputs, not decisions, so old histories still replay).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from makegood.domain.case import CompensationItem, RelatedCase
from makegood.domain.money import Money
from makegood.domain.provider import ReturnLabel
from makegood.domain.ticket import Incident


@dataclass(frozen=True)
class Message:
    subject: str
    body: str


def _letter(first_name: str, text: str) -> str:
    return f"Dear {first_name},\n\n{text}"


# ---- the apology
def what_went_wrong(inc: Incident) -> str:
    """The failure in the customer's own terms; a kind without its own words uses the summary."""
    own_words = {
        "car_missing": f"the car for your reservation {inc.reference} was not at {inc.location}",
        "wrong_item": f"order {inc.reference} arrived with {inc.item} instead of {inc.wanted}",
        "wrong_order": f"your order {inc.reference} ({inc.item}) was made wrong",
        "warranty_fault": f"your {inc.item} ({inc.asset}) has a {inc.fault} fault",
        "defective_item": f"the {inc.item} from your order {inc.reference} does not work",
        "support_call": f"you still need help with your {inc.item}",
    }
    return own_words.get(inc.kind.value, f"{inc.summary} ({inc.reference})")


def apology(
    first_name: str, inc: Incident, case_id: str, related: Sequence[RelatedCase]
) -> Message:
    history = ""
    if related:
        earlier = "; ".join(
            f"{c.case_id} on {c.opened_at:%Y-%m-%d} ({c.summary})" for c in related[-3:]
        )
        history = f" We have your earlier case(s) in front of us too: {earlier}."
    return Message(
        "We are sorry",
        _letter(
            first_name,
            f"we are sorry: {what_went_wrong(inc)}. You do not need to explain anything again: "
            f"case {case_id} has everything you told us, and we are fixing it now.{history}",
        ),
    )


def cancelled(
    first_name: str,
    case_id: str,
    reason: str,
    paid: Sequence[str] = (),
    unpaid: Sequence[str] = (),
) -> Message:
    """The case is closed before its end: why, what stays paid, and what will not be."""
    text = f"we have closed case {case_id}: {reason}."
    if paid:
        text += "\n\nAlready paid to you, and yours to keep:\n" + "\n".join(f"- {p}" for p in paid)
    if unpaid:
        text += (
            "\n\nNot paid, because the case is closed:\n"
            + "\n".join(f"- {u}" for u in unpaid)
            + "\nIf you still want any of these, reply to this message: a colleague reviews "
            "them and answers within two working days."
        )
    text += "\n\nIf anything is still not right, reply to this message and we pick it up at once."
    return Message("Your case is closed", _letter(first_name, text))


def taken_over(first_name: str, case_id: str, owner: str | None, within: timedelta) -> Message:
    """The case could not go on by itself: who has it now, and by when they are in touch."""
    who = f"{owner}, a member of our team," if owner else "a member of our operations team"
    return Message(
        "A person is taking care of your case",
        _letter(
            first_name,
            f"case {case_id} needs a person to take it further, and {who} now has it. "
            f"They will contact you within {_duration(within)}. Nothing you told us is lost, "
            "and you do not need to do anything until then.",
        ),
    )


def handed_over(first_name: str, case_id: str, owner: str | None, within: timedelta) -> Message:
    """The remedy ran out of what it may try by itself; the rest of the case goes on."""
    who = f"{owner}, a member of our team," if owner else "a member of our operations team"
    return Message(
        "A person is taking over the fix",
        _letter(
            first_name,
            f"we could not put this right automatically, so {who} now takes care of case "
            f"{case_id} personally and will contact you within {_duration(within)}. "
            "Anything we owe you for the trouble is still settled as we go, and we confirm it "
            "all in writing.",
        ),
    )


def closed_unanswered(first_name: str, case_id: str) -> Message:
    return Message(
        "We have closed your case",
        _letter(
            first_name,
            f"we asked whether everything is put right and did not hear back, so we have "
            f"closed case {case_id}. If anything is still not right, reply to this message: a "
            "colleague picks it up at once, and you do not need to explain anything again.",
        ),
    )


# ---- compensation above the frontline limit: paid in part at once, the rest decided
_DECIDERS = {"manager": "a manager", "ops_lead": "our operations lead"}


def decider(role: str | None) -> str:
    """Who decides an approval, as the customer reads it."""
    return _DECIDERS.get(role or "manager", "a senior colleague")


def compensation_pending(
    first_name: str,
    case_id: str,
    paid: Sequence[CompensationItem],
    pending: Sequence[CompensationItem],
    pending_total: Money,
    role: str | None,
    by: datetime,
) -> Message:
    """What was paid at once, and that the rest is being decided: by whom, and by when."""
    text = ""
    if paid:
        text = (
            "we have paid you at once what our team may grant straight away:\n"
            + "\n".join(f"- {_item(i)}" for i in paid)
            + "\n\n"
        )
    what = f"The rest, {pending_total}," if paid else f"Your compensation of {pending_total}"
    text += (
        f"{what} needs {decider(role)}'s approval, due by "
        f"{hhmm(by)} UTC:\n"
        + "\n".join(f"- {_item(i)}" for i in pending)
        + f"\n\nWe write to you as soon as it is decided (case {case_id}); you do not need to "
        "do anything."
    )
    return Message(
        "Your compensation: paid in part, the rest is being decided", _letter(first_name, text)
    )


def _item(item: CompensationItem) -> str:
    return f"{item.description}: {item.amount}" if item.amount else item.description


def _duration(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    if minutes % (24 * 60) == 0 and minutes >= 24 * 60:
        days = minutes // (24 * 60)
        return f"{days} day{'s' if days != 1 else ''}"
    if minutes % 60 == 0 and minutes >= 60:
        hours = minutes // 60
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


# ---- questions
QUESTION_SUBJECT = "A question about your case"
REMINDER_SUBJECT = "Reminder: your case"
# The same question again on another channel, when the first one stayed silent.
SECOND_CHANNEL_SUBJECT = "We did not hear back: a question about your case"


def question_call_reason(prompt: str) -> str:
    """What a call-back about an unanswered question is about (`call_booked` says "about ...")."""
    return f"a question we could not get an answer to: {prompt}"


def question_body(question_id: str, prompt: str, choices: Sequence[str]) -> str:
    return f"{prompt}\n\nPlease answer: {' / '.join(choices)} (question {question_id})."


def horn_question(vehicle: str) -> str:
    return f"We just sounded the horn of {vehicle}. Can you see or hear it now?"


def look_question(vehicle: str, location: str | None) -> str:
    where = f" Its last reported position is {location}." if location else ""
    return f"{vehicle} did not answer when we tried to sound its horn.{where} Can you see it?"


def pickup_question(vehicle: str, location: str | None) -> str:
    return f"Did you find {vehicle} at {location}?"


def substitute_question(wanted: str, label: ReturnLabel | None) -> str:
    return (
        f"{wanted} is out of stock.{return_label_note(label)} Would you like a substitute "
        "(answer 'substitute' with its SKU as value) or your money back ('refund')?"
    )


CLAIMS_QUESTION = "Please send us every receipt you want reimbursed, then answer 'done'."
FOLLOW_UP_QUESTION = "Is everything put right for you now?"


# ---- remedies: messages and the lines the written confirmation lists
def new_car(
    first_name: str,
    vehicle: str,
    vehicle_class: str,
    location: str,
    *,
    upgraded: bool,
    invite_claims: bool,
) -> Message:
    upgrade = " (upgraded)" if upgraded else ""
    claim_hint = (
        " If you need a taxi to get there, take one and send us the receipt: we reimburse it "
        "in full."
        if invite_claims
        else ""
    )
    return Message(
        "Your new car",
        _letter(
            first_name,
            f"we have booked {vehicle} ({vehicle_class}{upgrade}) for you at {location}."
            f"{claim_hint}",
        ),
    )


def rebooked_line(vehicle: str, vehicle_class: str, location: str, *, upgraded: bool) -> str:
    upgrade = " (upgraded)" if upgraded else ""
    return f"re-booked to {vehicle}, {vehicle_class}{upgrade}, at {location}"


def honked_line(vehicle: str, location: str | None) -> str:
    return f"sounded the horn of {vehicle} at {location}"


def released_line(booking_id: str, vehicle: str) -> str:
    return f"released booking {booking_id} ({vehicle})"


def replacement(first_name: str, sku: str, better: str) -> Message:
    return Message(
        "Your replacement is on its way",
        _letter(
            first_name,
            f"a new {sku}{better} is on its way to you, at no cost, with the details we have "
            "on file.",
        ),
    )


def better_model_note(same_model: bool, item: str) -> str:
    return "" if same_model else f" (a better model than {item})"


def replaced_line(sku: str, better: str, item: str, asset: str | None) -> str:
    return f"replacement {sku}{better} shipped for {item}" + (f" {asset}" if asset else "")


def repair(first_name: str, item: str) -> Message:
    return Message(
        "Your repair is booked",
        _letter(
            first_name,
            f"we booked the repair of your {item}; a prepaid shipping box is on its way.",
        ),
    )


def repair_line(item: str, asset: str, fault: str) -> str:
    return f"repair of {item} {asset} ({fault}) booked with a prepaid shipping box"


def return_label_line(label: ReturnLabel, item: str) -> str:
    return (
        f"prepaid return label {label.label_id} and pre-filled return form {label.form_id} "
        f"for {item}"
    )


def return_label_note(label: ReturnLabel | None) -> str:
    if label is None:
        return ""
    return (
        f" Your prepaid return label is {label.label_id}; the return form {label.form_id} is "
        "already filled in."
    )


def exchange_shipped(first_name: str, wanted: str, label: ReturnLabel | None) -> Message:
    return Message(
        "The right item is on its way",
        _letter(first_name, f"{wanted} is on its way.{return_label_note(label)}"),
    )


def shipped_line(wanted: str, order: str) -> str:
    return f"shipped {wanted} for order {order}"


def substitute_line(sku: str) -> str:
    return f"sent {sku} as a substitute"


def remade_line(item: str | None, order: str) -> str:
    return f"remade {item} for order {order}, at no cost"


_OWNED_WORDS = {"booking": "reservation", "asset": "device", "order": "order"}


def ownership_unverified(first_name: str, kind: str, ref: str) -> Message:
    what = _OWNED_WORDS.get(kind, kind)
    return Message(
        "We are checking your case",
        _letter(
            first_name,
            f"we could not confirm that {what} {ref} is registered to you, so we have not "
            "changed anything on it yet. A colleague is checking it now and will contact you "
            "personally; you do not need to do anything.",
        ),
    )


def ownership_line(kind: str, ref: str) -> str:
    what = _OWNED_WORDS.get(kind, kind)
    return f"a colleague is checking that {what} {ref} is registered to you, and will contact you"


def called_line(calls: int) -> str:
    return f"support call completed on attempt {calls}"


def handed_off_line(phone: str | None) -> str:
    return f"your case is with a colleague, who calls you personally on {phone}"


# ---- the written confirmation
def confirmation(
    first_name: str,
    reference: str,
    case_id: str,
    done: Sequence[str],
    paid_total: Money | None,
    still_open: Sequence[CompensationItem],
    declined: Sequence[CompensationItem] = (),
) -> Message:
    lines = [f"- {line}" for line in done] or ["- nothing yet"]
    body = [
        f"Dear {first_name},",
        "",
        f"here is everything we did about {reference} (case {case_id}):",
        *lines,
    ]
    if paid_total is not None:
        body += ["", f"In all we paid or credited you {paid_total}."]
    if still_open:
        body += [
            "",
            "Still open, a colleague will contact you about:",
            *[f"- {i.description}: {i.amount}" for i in still_open],
        ]
    if declined:
        body += [
            "",
            "We reviewed the following and did not grant it:",
            *[
                f"- {_item(i)}" + (f" (why: {i.declined_because})" if i.declined_because else "")
                for i in declined
            ],
            "If you think that is wrong, reply to this message: a different manager reviews it "
            "again, and you hear from us within two working days.",
        ]
    return Message("Confirmation: what we did", "\n".join(body))


# ---- a call-back's messages (the call-back workflow adds the greeting)
CALL_SUBJECT = "About your support call"
CALL_BOOKED_SUBJECT = "Your support call is booked"
QUESTION_CALL_SUBJECT = "About our call to you"
QUESTION_CALL_BOOKED_SUBJECT = "We will call you"
WHY_CALLING_AGAIN = {
    "dropped": "our call dropped",
    "no_answer": "we could not reach you",
    "no_callback": "we did not manage to connect the call",
}
SCHEDULING_TROUBLE = (
    "our scheduling system is having trouble booking your call. We keep trying and will text "
    "you as soon as it is booked."
)


def greeting(first_name: str, body: str) -> str:
    return _letter(first_name, body)


def hhmm(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M")


def call_booked(phone: str, due: datetime, reason: str) -> str:
    return (
        f"we will call you on {phone} at {hhmm(due)} UTC about {reason}. If anything goes "
        "wrong with the call, we call you back without you having to do anything."
    )


def calling_again(outcome: str, due: datetime) -> str:
    return (
        f"{WHY_CALLING_AGAIN[outcome]}. We are calling you back at {hhmm(due)} UTC; you do not "
        "need to do anything."
    )


def question_call_given_up() -> str:
    return (
        "we could not reach you by phone either, so we will not call again about this. You can "
        "answer any of our messages at any time, and we take it from there."
    )


def call_handed_off(by: datetime) -> str:
    return (
        "we could not complete your call. A colleague now has your whole case and will call "
        f"you personally by {hhmm(by)} UTC."
    )
