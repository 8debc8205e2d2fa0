from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from makegood.domain.receipts import SHA256_PATTERN
from makegood.domain.ticket import PHONE_PATTERN, SAFE_ID_PATTERN

_PATTERN_MEANS = {
    SAFE_ID_PATTERN: "must be 1-64 letters, digits, '.', '_' or '-', starting with a letter "
    "or digit",
    PHONE_PATTERN: "must be an E.164 phone number such as +15551234567",
    SHA256_PATTERN: "must be a SHA-256 digest: 64 lower-case hex digits, as the upload answered",
}


def reason(e: Any) -> str:
    """One pydantic error, in words an operator can act on."""
    return _reason(e)


def _reason(e: Any) -> str:
    if e["type"] == "string_pattern_mismatch":
        meaning = _PATTERN_MEANS.get(str((e.get("ctx") or {}).get("pattern")))
        if meaning:
            shown = (
                repr(e["input"])
                if len(str(e["input"])) <= 40
                else repr(str(e["input"])[:40]) + "..."
            )
            return f"{meaning} (got {shown})"
    if e["type"] == "enum":
        expected = (e.get("ctx") or {}).get("expected", "")
        return f"unknown value {e['input']!r}; expected {expected}"
    return str(e["msg"]).removeprefix("Value error, ")


def field_errors(err: ValidationError, root: str = "(ticket)") -> list[str]:
    """`field.path: reason` for each problem, as an operator should read them; a problem
    with the whole document is labelled `root`."""
    return [f"{'.'.join(str(p) for p in e['loc']) or root}: {_reason(e)}" for e in err.errors()]
