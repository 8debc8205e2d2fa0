"""Zendesk's ticket webhook, mapped onto our Ticket.

Zendesk sends what a trigger's webhook body says; README shows the body to configure. Our
incident fields come from custom ticket fields; empty placeholders arrive as "" and are
treated as absent.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class ZendeskRequester(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    id: str
    name: str
    email: str | None = None
    phone: str | None = None


class ZendeskTicket(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    id: str
    subject: str | None = None
    description: str | None = None
    created_at: str | None = None
    requester: ZendeskRequester
    custom_fields: dict[str, Any] = {}


EXAMPLE: dict[str, Any] = {
    "ticket": {
        "id": "35436",
        "subject": "Wrong drink",
        "description": "Oat flat white came as a latte.",
        "created_at": "2026-01-11T09:30:00Z",
        "requester": {"id": "991", "name": "Mia Chen", "email": "mia@example.com", "phone": ""},
        "custom_fields": {
            "incident_kind": "wrong_order",
            "reference": "ORD-77",
            "paid_amount": "4.80",
            "currency": "USD",
            "item": "oat-flat-white",
            "location": "",
        },
    }
}
"""A body as the trigger in the README sends it (and the OpenAPI document shows)."""


class ZendeskWebhook(BaseModel):
    model_config = ConfigDict(extra="ignore")

    ticket: ZendeskTicket


def _blank_to_none(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v not in ("", None)}


def to_ticket(payload: ZendeskWebhook) -> dict[str, Any]:
    """Our ticket, as raw data for the same validation every other ticket goes through."""
    t = payload.ticket
    fields = _blank_to_none(t.custom_fields)
    requester = _blank_to_none(t.requester.model_dump())
    customer = {
        "id": f"zd-{requester.get('id')}",
        "name": requester.get("name"),
        "email": requester.get("email"),
        "phone": requester.get("phone"),
        "preferred_channel": fields.pop("preferred_channel", "email"),
    }
    paid = {"amount": fields.pop("paid_amount", "0"), "currency": fields.pop("currency", "USD")}
    incident: dict[str, Any] = {
        "kind": fields.pop("incident_kind", None),
        "reference": fields.pop("reference", f"ZD-{t.id}"),
        "summary": t.description or t.subject,
        "paid": paid,
        **{
            k: fields[k]
            for k in ("item", "wanted", "location", "asset", "fault", "call_at")
            if k in fields
        },
    }
    return {
        "id": f"ZD-{t.id}",
        "source": "zendesk",
        "reported_at": t.created_at or None,
        "customer": _blank_to_none(customer),
        "incident": _blank_to_none(incident),
    }
