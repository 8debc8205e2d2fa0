from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    model_validator,
)

from makegood.domain import ids
from makegood.domain.money import Money

SAFE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
PHONE_PATTERN = r"^\+[1-9][0-9]{6,14}$"
SafeId = Annotated[
    str,
    StringConstraints(pattern=SAFE_ID_PATTERN),
    Field(description="1-64 characters: letters, digits, '.', '_' and '-'"),
]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Phone = Annotated[
    str,
    StringConstraints(pattern=PHONE_PATTERN),
    Field(description="E.164, e.g. +15551234567"),
]

Channel = Literal["email", "sms", "app"]


class IncidentKind(StrEnum):
    CAR_MISSING = "car_missing"
    WRONG_ITEM = "wrong_item"
    WRONG_ORDER = "wrong_order"
    WARRANTY_FAULT = "warranty_fault"
    DEFECTIVE_ITEM = "defective_item"
    SUPPORT_CALL = "support_call"


# What each kind needs on the incident, and what the field means for it.
REQUIRED_FIELDS: dict[IncidentKind, dict[str, str]] = {
    IncidentKind.CAR_MISSING: {"item": "the reserved vehicle id", "location": "the pickup spot"},
    IncidentKind.WRONG_ITEM: {"item": "the SKU that was shipped", "wanted": "the SKU ordered"},
    IncidentKind.WRONG_ORDER: {"item": "the product that was made wrong"},
    IncidentKind.WARRANTY_FAULT: {
        "item": "the device model (SKU)",
        "asset": "the device's serial number",
        "fault": "a short fault code such as screen",
    },
    IncidentKind.DEFECTIVE_ITEM: {"item": "the product (SKU) that does not work"},
    IncidentKind.SUPPORT_CALL: {
        "item": "the product the call is about",
        "call_at": "when the customer wants to be called",
    },
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Customer(_Strict):
    id: SafeId
    name: ShortText
    email: EmailStr | None = None
    phone: Phone | None = None
    app_user_id: SafeId | None = None
    preferred_channel: Channel = "email"

    @model_validator(mode="after")
    def _reachable(self) -> Customer:
        if self.contact(self.preferred_channel) is None:
            needed = {"email": "email", "sms": "phone", "app": "app_user_id"}[
                self.preferred_channel
            ]
            raise ValueError(
                f"preferred_channel is {self.preferred_channel!r} but {needed} is missing"
            )
        return self

    def contact(self, channel: Channel) -> str | None:
        return {"email": self.email, "sms": self.phone, "app": self.app_user_id}[channel]

    @property
    def first_name(self) -> str:
        return self.name.split()[0]


class Incident(_Strict):
    kind: IncidentKind
    reference: SafeId = Field(description="reservation or order id")
    summary: LongText
    paid: Money = Field(description="what the customer paid for the failed service")
    item: SafeId | None = None
    wanted: SafeId | None = None
    location: ShortText | None = None
    asset: SafeId | None = Field(default=None, description="serial number of the device")
    fault: SafeId | None = Field(default=None, description="fault code, e.g. screen")
    cause: SafeId | None = Field(
        default=None,
        description="why the service failed, as a code of your helpdesk's categories (e.g. "
        "vehicle-misplaced): the trends count cases by it; the summary stays free text",
    )
    call_at: AwareDatetime | None = Field(
        default=None, description="support_call: the time the customer chose"
    )
    occurred_at: datetime | None = None

    @model_validator(mode="after")
    def _kind_fields(self) -> Incident:
        missing = [
            f"{name} ({meaning})"
            for name, meaning in REQUIRED_FIELDS[self.kind].items()
            if getattr(self, name) is None
        ]
        if missing:
            raise ValueError(f"a {self.kind.value} incident needs " + ", ".join(missing))
        return self


class Ticket(_Strict):
    id: SafeId
    source: ShortText = "cli"
    reported_at: datetime | None = None
    customer: Customer
    incident: Incident

    @model_validator(mode="after")
    def _callable(self) -> Ticket:
        if self.incident.kind == IncidentKind.SUPPORT_CALL and self.customer.phone is None:
            raise ValueError("a support_call needs customer.phone to call")
        return self

    @property
    def case_id(self) -> str:
        return ids.case_id(self.id)
