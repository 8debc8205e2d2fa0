"""What the durable case index keeps of a case, and the two records a case sends it.

The records travel as activity inputs (encrypted in history like every payload); the index
itself keeps only pseudonyms of the customer and the asset (`makegood.domain.pseudonyms`),
never an id, a name or free text, so it can outlive Temporal's retention without holding
personal data in clear.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from makegood.domain.case import CaseOutcome


class CaseOpenedRecord(BaseModel):
    """Sent when a case opens: the activity turns the ids into pseudonyms before storing."""

    case_id: str
    ticket_id: str
    kind: str
    customer_id: str
    asset: str = ""  # the serial number, else the reservation or order reference
    opened_at: datetime


class CaseClosedRecord(BaseModel):
    """Sent when a case closes; it carries the opening too, so a case opened before the index
    existed (or whose first write failed) is still indexed when it closes."""

    opened: CaseOpenedRecord
    closed_at: datetime
    resolution: str | None = None
    outcome: CaseOutcome | None = None  # cases closed before it was sent have none


class IndexedCase(BaseModel):
    """One row of the index."""

    case_id: str
    ticket_id: str
    kind: str
    customer: str  # pseudonym
    asset: str  # pseudonym
    opened_at: datetime
    closed_at: datetime | None = None
    resolution: str | None = None
    archive_key: str | None = None
    archived_at: datetime | None = None
    archive_note: str | None = None  # why archiving gave up, when it did
    # The documented outcome, which trends are read from: none while the case is open, nor for
    # a case closed before the index kept it.
    outcome: CaseOutcome | None = None

    def closed_words(self) -> str:
        """`closed 2026-11-23 12:00 UTC, resolved` for messages; `open` when it is not."""
        if self.closed_at is None:
            return "open"
        when = self.closed_at.strftime("%Y-%m-%d %H:%M UTC")
        return f"closed {when}" + (f", {self.resolution}" if self.resolution else "")


def stored_outcome(outcome: CaseOutcome | None) -> str | None:
    """An outcome as the index keeps it: without its cause, which is the ticket's own words
    (free text, perhaps personal); the index holds pseudonyms, codes, times and amounts."""
    return outcome.model_copy(update={"cause": ""}).model_dump_json() if outcome else None


def read_row(row: dict[str, Any]) -> IndexedCase:
    """An index row as either index reads it: its outcome is JSON text (SQLite's TEXT,
    PostgreSQL's jsonb as asyncpg hands it over)."""
    outcome = row.pop("outcome", None)
    found = IndexedCase.model_validate(row)
    found.outcome = CaseOutcome.model_validate_json(outcome) if outcome else None
    return found
