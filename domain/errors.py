from __future__ import annotations

from pydantic import ValidationError


def field_errors(err: ValidationError) -> list[str]:
    """`field.path: reason` for each problem, as an operator should read them."""
    lines = []
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "(ticket)"
        msg = e["msg"].removeprefix("Value error, ")
        lines.append(f"{where}: {msg}")
    return lines
