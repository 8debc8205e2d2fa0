"""Makegood's search attributes on the Temporal server, and the visibility queries that find
cases by them.

Queries are built here from validated values only: a case id, a stage, an SLA level or a
pseudonym must have the exact form Makegood gives it before it is quoted into a query, so
no value can close its quotes and widen the query (`x" OR WorkflowType != "`). The one
exception is an auditor's own `--query`, passed as-is on purpose (see `expert`).

The SDK is imported by `ensure_search_attributes` alone, so that the CLI can check its
arguments with these rules without loading it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

from makegood.domain import contract, ids
from makegood.domain.ticket import SAFE_ID_PATTERN

if TYPE_CHECKING:
    from temporalio.client import Client


class UnsafeQueryValue(ValueError):
    """A value that cannot go into a visibility query: it does not have the form it should."""


# `case-<ticket id>`, exactly what `ids.case_id` makes of a ticket's SafeId.
CASE_ID: Final = re.compile(f"^{re.escape(ids.CASE_PREFIX)}{SAFE_ID_PATTERN.removeprefix('^')}")
# Anything Makegood puts into a keyword attribute or a workflow id: enum values, hex
# pseudonyms, case and call-back ids. No quotes, backslashes, spaces or parentheses.
KEYWORD: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$")
NAME: Final = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")


def case_id(value: str) -> str:
    """`value` if it is a case id (`case-<ticket id>`), else UnsafeQueryValue."""
    if not CASE_ID.match(value):
        raise UnsafeQueryValue(
            f"{value!r} is not a case id: case-<ticket id>, the ticket id being 1-64 letters, "
            "digits, '.', '_' or '-' (use --query for anything else)"
        )
    return value


def literal(value: str) -> str:
    """A keyword value as a quoted query literal; refused unless it has a keyword's form."""
    if not KEYWORD.match(value):
        raise UnsafeQueryValue(f"{value!r} cannot be put into a visibility query")
    return f'"{value}"'


def _name(attribute: str) -> str:
    if not NAME.match(attribute):
        raise UnsafeQueryValue(f"{attribute!r} is not a search attribute name")
    return attribute


def equals(attribute: str, value: str) -> str:
    return f"{_name(attribute)} = {literal(value)}"


def one_of(attribute: str, values: Iterable[str]) -> str:
    listed = [literal(v) for v in values]
    if not listed:
        raise UnsafeQueryValue(f"{attribute}: an empty list matches nothing")
    return f"{_name(attribute)} IN ({', '.join(listed)})"


MAKEGOOD_TYPES: Final = one_of(
    "WorkflowType", [contract.RECOVERY_WORKFLOW, contract.CALLBACK_WORKFLOW]
)


def expert(query: str) -> str:
    """An auditor's own visibility query, in parentheses, passed on as written.

    Its text is the auditor's, for auditors who know Temporal's visibility syntax; all that
    is checked is that its quotes are closed and its parentheses balanced, so that it stays
    one term of the AND that keeps the results to Makegood's workflows.
    """
    depth, quote, escaped = 0, "", False
    for ch in query:
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = ""
        elif ch in "\"'`":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                break
    if quote or depth != 0:
        raise UnsafeQueryValue(
            f"--query {query!r}: unbalanced quotes or parentheses; it must be one whole "
            "visibility expression"
        )
    if not query.strip():
        raise UnsafeQueryValue("--query is empty")
    return f"({query})"


async def ensure_search_attributes(client: Client) -> list[str]:
    """Register Makegood's search attributes where missing; returns those it added.

    Cases upsert their stage, so a server without them would stall every case.
    """
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import (
        AddSearchAttributesRequest,
        ListSearchAttributesRequest,
    )
    from temporalio.service import RPCError, RPCStatusCode

    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
        missing = [
            name for name in contract.KEYWORD_ATTRIBUTES if name not in listed.custom_attributes
        ]
    except RPCError as err:
        if err.status != RPCStatusCode.UNIMPLEMENTED:  # the time-skipping test server
            raise
        missing = list(contract.KEYWORD_ATTRIBUTES)
    if missing:
        try:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(
                    namespace=client.namespace,
                    search_attributes={
                        n: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for n in missing
                    },
                )
            )
        except RPCError as err:
            if err.status != RPCStatusCode.ALREADY_EXISTS:  # another process was quicker
                raise
    return missing
