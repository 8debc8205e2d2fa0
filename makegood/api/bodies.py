"""What the API reads and answers besides the domain's own models: request bodies, problem
reports, provider deliveries."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field

from makegood.domain import roles
from makegood.domain.money import Money
from makegood.domain.provider import CallOutcome
from makegood.domain.receipts import Sha256
from makegood.domain.ticket import LongText, Phone, SafeId, ShortText


class Problem(BaseModel):
    field: str
    reason: str


class ProblemReport(BaseModel):
    detail: str
    problems: list[Problem] = []


class Opened(BaseModel):
    case_id: str
    created: bool
    run_id: str | None
    playbook_version: str | None = Field(
        default=None, description="the playbook set the new case runs by; null for a duplicate"
    )
    note: str | None = Field(
        default=None,
        description="for a duplicate the case index knew: `closed <when>, <resolution>`",
    )


class AnswerBody(BaseModel):
    question_id: ShortText
    answer: ShortText
    value: SafeId | None = None
    comment: LongText | None = None


class ClaimBody(BaseModel):
    claim_id: SafeId
    description: ShortText
    amount: Money
    receipt: ShortText | None = Field(default=None, description="the receipt's file name")
    receipt_sha256: Sha256 | None = Field(
        default=None,
        description="the digest POST /cases/{case_id}/receipts answered for the receipt file",
    )


class DecisionBody(BaseModel):
    request_id: ShortText
    approved: bool
    note: LongText | None = None
    amount: Money | None = Field(
        default=None,
        description="approve only this much of the amount that waits; the rest is declined "
        "with the note as the reason",
    )


class NoteBody(BaseModel):
    text: LongText


# Published in the schema so that clients see who may own a case; checked by `_owner` so
# that a refusal carries the role table's reason rather than a regular expression.
OWNER_PATTERN = rf"^({'|'.join(roles.allowed(roles.OWN))}):[A-Za-z0-9][A-Za-z0-9._-]{{0,63}}$"


def _owner(text: str) -> str:
    """`role:id` of someone the role table lets own a case."""
    role, sep, _ = text.partition(":")
    reason = roles.refusal(role, roles.OWN) if sep and role in roles.ROLES else None
    if reason is None and not re.fullmatch(OWNER_PATTERN, text):
        shapes = " or ".join(f"{r}:ID" for r in roles.allowed(roles.OWN))
        reason = (
            f"expected {shapes}, the ID 1-64 letters, digits, '.', '_' or '-' starting with a "
            f"letter or digit (got {text[:80]!r})"
        )
    if reason is not None:
        raise ValueError(reason)
    return text


class AssignBody(BaseModel):
    to: Annotated[
        str,
        Field(examples=["agent:sam"], json_schema_extra={"pattern": OWNER_PATTERN}),
        AfterValidator(_owner),
    ]
    contact: EmailStr | None = None


class ReasonBody(BaseModel):
    reason: LongText


class TelephonyEvent(BaseModel):
    case_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,80}$")]
    call_id: ShortText
    status: CallOutcome


class PaymentNotice(BaseModel):
    type: Literal["payment.settled", "payment.failed", "payment.refunded"]
    idempotency_key: Annotated[str, Field(pattern=r"^case-[A-Za-z0-9._-]+:.+$", max_length=200)]
    payment_id: ShortText | None = None
    reason: LongText | None = None


class SmsReply(BaseModel):
    """A text message a customer sent back, as the SMS provider delivers it."""

    model_config = ConfigDict(populate_by_name=True)

    from_: Phone = Field(alias="from", description="the customer's number, E.164")
    text: Annotated[str, Field(max_length=1600)]


class Delivery(BaseModel):
    delivered: bool
    note: str
