"""The customer's link: a signed, expiring, single-case token for one question.

Every message that asks the customer something carries one (the notification activity adds
it, so neither the link nor its key ever enters a case's history). It opens the customer's
page for that case, with no login. It is good only while its question is open: the page
asks the case, and a link whose question has closed (answered, timed out, or superseded)
shows nothing of the case and changes nothing. A forged or altered link is refused before
Temporal is asked anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from makegood.domain.signed import BadToken, Signer

PURPOSE: Final = "customer-link"
PATH: Final = "/c/"
DEFAULT_TTL: Final = timedelta(days=14)


@dataclass(frozen=True)
class LinkFor:
    case_id: str
    question_id: str


class Links:
    """Makes and reads customer links under MAKEGOOD_WEB_SECRET, for pages at `base_url`."""

    def __init__(self, secret: str, base_url: str, ttl: timedelta = DEFAULT_TTL) -> None:
        self.signer = Signer(secret, PURPOSE)
        self.base_url = base_url.rstrip("/")
        self.ttl = ttl

    def url(self, case_id: str, question_id: str, *, now: datetime) -> str:
        expires = int((now + self.ttl).timestamp())
        token = self.signer.sign({"c": case_id, "q": question_id}, expires=expires)
        return f"{self.base_url}{PATH}{token}"

    def read(self, token: str, *, now: datetime) -> LinkFor:
        """Whose case and which question a token opens; BadToken if forged or expired."""
        claims = self.signer.read(token, now=now.timestamp())
        case_id, question_id = claims.get("c"), claims.get("q")
        if not isinstance(case_id, str) or not isinstance(question_id, str):
            raise BadToken("not a valid link")
        return LinkFor(case_id, question_id)
