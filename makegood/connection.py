from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from makegood.settings import Settings


async def connect(settings: Settings) -> Client:
    """A client speaking the SDK's pydantic converter, as the worker and replayer do."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
    )
