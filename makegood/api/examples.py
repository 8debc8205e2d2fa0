"""Request bodies the OpenAPI document shows as examples; the fuzz run (tests/test_fuzz.py)
sends them first, so that its generated variations start from requests that succeed."""

from __future__ import annotations

from typing import Any

TICKETS: dict[str, Any] = {
    "wrong drink": {
        "value": {
            "id": "T-3001",
            "source": "pos",
            "customer": {
                "id": "C-88",
                "name": "Mia Chen",
                "preferred_channel": "sms",
                "phone": "+15550100088",
            },
            "incident": {
                "kind": "wrong_order",
                "reference": "ORD-3001",
                "summary": "Ordered an oat flat white, was given a latte.",
                "paid": {"amount": "4.80", "currency": "USD"},
                "item": "oat-flat-white",
            },
        }
    }
}
