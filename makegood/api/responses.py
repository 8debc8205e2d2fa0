"""What each kind of route may answer besides success, as OpenAPI `responses=` entries.

Every refusal the API sends is `{"detail": "...", "problems": [...]}` (a ProblemReport; the
list is empty unless fields are at fault), whether it comes from a guard's HTTPException, an
exception handler or the body-size limit. Declaring each status with that model lets clients
(and the schemathesis run in tests/test_fuzz.py) hold every answer to the document.
"""

from __future__ import annotations

from typing import Any, Final

from makegood.api.bodies import ProblemReport

Responses = dict[int | str, dict[str, Any]]


def problem(description: str) -> dict[str, Any]:
    return {"model": ProblemReport, "description": description}


BAD_BODY: Final[Responses] = {
    413: problem("the body is larger than MAKEGOOD_MAX_BODY_BYTES"),
    422: problem("the request is not valid; the problems say where and why"),
}
TEMPORAL: Final[Responses] = {503: problem("Temporal cannot be reached; nothing was done")}
TOKEN: Final[Responses] = {
    401: problem("no bearer token, or an unknown one"),
    403: problem("the token's role may not do this; the role table's reason"),
}
CASE: Final[Responses] = {404: problem("no such case")}
REFUSED: Final[Responses] = {
    409: problem("the case refused the action (its reason), or has ended"),
    429: problem("a per-case limit is reached; the limit is named"),
}
SIGNED: Final[Responses] = {
    401: problem("the signature is missing, stale or does not match"),
    409: problem("this delivery was already processed, or is being processed: retry later"),
}


def responses(*parts: Responses) -> Responses:
    """The union of `parts`; a later part's entry for a status replaces an earlier one's."""
    out: Responses = {}
    for part in parts:
        out.update(part)
    return out
