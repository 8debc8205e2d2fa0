"""What people send to a running case: answers, expense claims, approvals and notes."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from makegood.domain.money import Money
from makegood.domain.receipts import Sha256
from makegood.domain.ticket import LongText, SafeId, ShortText

# ops_lead: above a manager, decides the approvals a chain escalates to them (see `roles`).
Role = Literal["customer", "agent", "manager", "ops_lead", "auditor", "system"]


# Answers that need a value, and what the value is: a validator refuses them without one, and
# `makegood status` suggests them with it.
NEEDS_VALUE: Final[Mapping[str, str]] = MappingProxyType({"substitute": "SKU"})


class Actor(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: SafeId
    role: Role

    def __str__(self) -> str:
        return f"{self.role}:{self.id}"

    @classmethod
    def parse(cls, text: str) -> Actor:
        """`role:id`, as the CLI takes it."""
        role, sep, ident = text.partition(":")
        if not sep:
            raise ValueError(f"expected ROLE:ID such as manager:mia, got {text!r}")
        return cls.model_validate({"role": role, "id": ident})


class _Action(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CustomerAnswer(_Action):
    question_id: ShortText
    answer: ShortText
    value: SafeId | None = Field(default=None, description="e.g. the SKU of a chosen substitute")
    comment: LongText | None = None
    by: Actor


class ExpenseClaim(_Action):
    claim_id: SafeId
    description: ShortText
    amount: Money
    receipt: ShortText | None = Field(
        default=None,
        description="the receipt's file name or a reference; before receipts were uploaded, "
        "the only mention of a receipt",
    )
    receipt_sha256: Sha256 | None = Field(
        default=None,
        description="the uploaded receipt file (POST /cases/{id}/receipts answers its digest)",
    )
    by: Actor


class ApprovalDecision(_Action):
    request_id: ShortText
    approved: bool
    note: LongText | None = None
    amount: Money | None = Field(
        default=None,
        description="approve only this much of what waits (a partial approval; needs a note)",
    )
    by: Actor


class AgentNote(_Action):
    text: LongText
    by: Actor


class Accepted(BaseModel):
    """What an accepted update returns to its caller."""

    case_id: str
    detail: str


class AssignCase(_Action):
    to: Actor = Field(description="the agent or manager who owns the case from now on")
    contact: EmailStr | None = Field(default=None, description="where the owner gets SLA warnings")
    by: Actor


class EscalateCase(_Action):
    reason: LongText
    by: Actor


class CancelCase(_Action):
    reason: LongText
    by: Actor
