"""What each kind of route may answer besides success, as OpenAPI `responses=` entries.

Every refusal the API sends is `{"detail": "...", "problems": [...]}` (a ProblemReport; the
list is empty unless fields are at fault), whether it comes from a guard's HTTPException, an
exception handler or the body-size limit. Declaring each status with that model lets clients
(and the schemathesis run in tests/test_fuzz.py) hold every answer to the document.
"""

from __future__ import annotations

from typing import Any, Final

from fastapi import FastAPI

from makegood.api.bodies import ProblemReport

Responses = dict[int | str, dict[str, Any]]


def problem(description: str) -> dict[str, Any]:
    return {"model": ProblemReport, "description": description}


BAD_BODY: Final[Responses] = {
    413: problem("the body is larger than MAKEGOOD_MAX_BODY_BYTES"),
    422: problem("the request is not valid; the problems say where and why"),
}
UNREADABLE: Final[Responses] = {
    400: problem(
        "the body cannot be read as JSON at all (not UTF-8, nested too deeply); "
        "FastAPI says so before any field is looked at"
    )
}
"""Routes whose body FastAPI parses; the webhooks parse their own and answer 422 instead."""
BAD_QUERY: Final[Responses] = {422: BAD_BODY[422]}
TEMPORAL: Final[Responses] = {
    503: {
        **problem(
            "Temporal is unreachable or did not answer in time; nothing was done. The detail "
            "says which and why, Retry-After when to try again"
        ),
        "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}},
    }
}
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


BODY_REFUSED: Final[Responses] = {
    408: problem("the body did not arrive in time"),
    413: BAD_BODY[413],
}
"""What any route may answer before its own code runs (`makegood.api.limits.BodyLimit`)."""


def responses(*parts: Responses) -> Responses:
    """The union of `parts`; a later part's entry for a status replaces an earlier one's."""
    out: Responses = {}
    for part in parts:
        out.update(part)
    return out


ISO_DURATION: Final = r"^-?P(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$"
"""A duration as pydantic writes it: ISO 8601, a year of 365 days, seconds with a fraction."""


def _durations(node: Any) -> None:
    if isinstance(node, dict):
        if node.get("format") == "duration":
            # JSON Schema's "duration" is RFC 3339's, which has no fractions of a second and
            # no days after years: strict clients would refuse half of what we send.
            del node["format"]
            node["pattern"] = ISO_DURATION
            node.setdefault("description", "ISO 8601 duration, e.g. PT4H or P1DT2H30M12.5S")
        for value in node.values():
            _durations(value)
    elif isinstance(node, list):
        for value in node:
            _durations(value)


def describe_durations_as_sent(app: FastAPI) -> None:
    """Make the app's OpenAPI document describe durations the way the API writes them."""
    generate = app.openapi

    def document() -> dict[str, Any]:
        if app.openapi_schema is None:
            _durations(generate())  # FastAPI keeps the document it made; edit that one
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = document  # type: ignore[method-assign]
