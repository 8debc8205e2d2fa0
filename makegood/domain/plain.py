"""The case in a customer's words: what their page says, with no stage codes and no ids
beyond the case number.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Final

from makegood.domain.case import Stage

NEXT: Final[Mapping[Stage, str]] = MappingProxyType(
    {
        Stage.ACKNOWLEDGE: "We have your report and are looking into it now.",
        Stage.DIAGNOSE: "We are finding out exactly what went wrong.",
        Stage.REMEDY: "We are putting it right.",
        Stage.COMPENSATE: "We are working out what we owe you for the trouble.",
        Stage.CONFIRM: "We are writing to you with everything we did.",
        Stage.FOLLOW_UP: "We will check in with you to make sure all is well.",
        Stage.DOCUMENT: "All done: we are recording what happened so it does not happen again.",
        Stage.CLOSED: "Your case is closed.",
    }
)

# What happened, as the customer lived it (status.kind is the incident's kind).
HAPPENED: Final[Mapping[str, str]] = MappingProxyType(
    {
        "car_missing": "The car you reserved was not where it should have been.",
        "wrong_item": "We sent you the wrong item.",
        "wrong_order": "We got your order wrong.",
        "warranty_fault": "Something you bought from us stopped working.",
        "defective_item": "Something you bought from us does not work.",
        "support_call": "Your call to our support team dropped, and nobody called you back.",
    }
)

# The words a customer taps for an answer the case knows by its code.
CHOICES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "found": "Yes, I found it",
        "not_found": "No, I can't find it",
        "picked_up": "Yes, I have it",
        "missing": "No, it's not there",
        "done": "I have no more receipts",
        "satisfied": "Yes, all good",
        "not_satisfied": "No, something is still wrong",
        "refund": "My money back",
        "substitute": "A substitute",
    }
)

LINK_LINE: Final = "Answer with one tap, or see your case, here:"
SMS_REPLY_LINE: Final = "Or reply to this text: 1 for the first answer above, 2 for the second."


def happened(kind: str) -> str:
    return HAPPENED.get(kind, "Something went wrong with our service.")


def choice(code: str) -> str:
    """A choice as the customer reads it: its words, or the code made readable."""
    return CHOICES.get(code) or code.replace("_", " ").replace("-", " ").capitalize()


def with_link(body: str, url: str) -> str:
    """A message that asks something, with the customer's link at its end."""
    return f"{body}\n\n{LINK_LINE}\n{url}"


def reply_choice(text: str, choices: Sequence[str]) -> str | None:
    """The choice a texted reply names: its number in the question's list ("1" for the first,
    as the message lists them), its code ("not_found", "not found") or its words ("No, I can't
    find it"), in any case and spacing; None if it names none of them."""
    said = " ".join(text.lower().split()).strip(" .!")
    if said.isdigit():
        n = int(said)
        return choices[n - 1] if 1 <= n <= len(choices) else None
    for code in choices:
        if said in (code.lower(), code.lower().replace("_", " "), choice(code).lower()):
            return code
    return None
