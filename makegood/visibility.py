"""Makegood's search attributes on the Temporal server: what visibility finds cases by."""

from __future__ import annotations

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from makegood.domain import contract


async def ensure_search_attributes(client: Client) -> list[str]:
    """Register Makegood's search attributes where missing; returns those it added.

    Cases upsert their stage, so a server without them would stall every case.
    """
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
