"""The embedded dev server keeps closed cases for `retention_days` (its own default is a day,
after which a closed case, its timeline and its replay were gone)."""

from __future__ import annotations

from datetime import timedelta

from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.testing import WorkflowEnvironment

from makegood.devserver import set_retention
from makegood.settings import Settings
from tests.harness import CONVERTER, binary


async def test_the_dev_servers_namespace_keeps_closed_cases_for_the_configured_days() -> None:
    async with await WorkflowEnvironment.start_local(
        data_converter=CONVERTER,
        dev_server_existing_path=binary("temporal"),
        dev_server_log_level="error",
    ) as env:
        service = env.client.workflow_service
        ask = DescribeNamespaceRequest(namespace=env.client.namespace)
        before = (await service.describe_namespace(ask)).config.workflow_execution_retention_ttl
        assert before.ToTimedelta() == timedelta(days=1)  # what the dev server makes

        await set_retention(env.client, env.client.namespace, Settings().retention_days)
        after = (await service.describe_namespace(ask)).config.workflow_execution_retention_ttl
        assert after.ToTimedelta() == timedelta(days=30)
