"""The connection settings against a real dev server and real Makegood processes.

- A client built from TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE runs a case on the dev server, in
  a namespace of its own.
- Mutual TLS through a TLS terminator in front of the dev server (which has no TLS options):
  a worker with the client certificate runs a case, an auditor's command reads it with the
  same settings, and a client without a certificate is turned away.
- Bad settings stop the CLI's Temporal commands (exit 2) and the worker and API processes
  before they connect.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from makegood.adapters.local.store import LocalStore
from makegood.connection import connect, load_connection
from makegood.privacy.codec import keys_of
from makegood.registry import build_worker
from makegood.visibility import ensure_search_attributes
from tests.harness import (
    CONVERTER,
    ROOT,
    TEST_KEYS,
    binary,
    local_adapters,
    start,
    temporal_env,
    ticket,
)
from tests.tls_proxy import Pki, tls_proxy

NAMESPACE = "makegood-conn"


@pytest.fixture(scope="module")
async def server() -> AsyncIterator[WorkflowEnvironment]:
    """A dev server whose client (env.client) is in NAMESPACE, not in `default`."""
    async with await WorkflowEnvironment.start_local(
        namespace=NAMESPACE,
        data_converter=CONVERTER,
        dev_server_existing_path=binary("temporal"),
        dev_server_log_level="error",
    ) as env:
        yield env


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki.create(tmp_path_factory.mktemp("pki"))


def address(server: WorkflowEnvironment) -> str:
    return server.client.service_client.config.target_host


async def run_case(client: Client, store: LocalStore) -> str:
    """S5 (no human input) with a worker on `client`; returns the case id once it closed."""
    await ensure_search_attributes(client)
    task_queue = f"conn-{uuid.uuid4().hex[:8]}"
    async with build_worker(client, task_queue, local_adapters(store).activities()):
        case = await start(client, store, ticket("s5-wrong-drink.json"), task_queue)
        outcome = await case.result()
    assert outcome.resolution == "resolved"
    return case.id


async def test_a_client_from_temporal_variables_runs_a_case_in_its_namespace(
    server: WorkflowEnvironment, store: LocalStore
) -> None:
    connection = load_connection(
        None,
        {
            "TEMPORAL_ADDRESS": address(server),
            "TEMPORAL_NAMESPACE": NAMESPACE,
            "TEMPORAL_CONFIG_FILE": os.devnull,
        },
    )
    client = await connect(connection, TEST_KEYS)
    assert client.namespace == NAMESPACE
    assert keys_of(client) is TEST_KEYS  # the pydantic converter with the payload codec
    assert isinstance(client.data_converter.payload_converter, type(CONVERTER.payload_converter))

    case_id = await run_case(client, store)

    described = await server.client.get_workflow_handle(case_id).describe()
    assert described.status == WorkflowExecutionStatus.COMPLETED
    elsewhere = await Client.connect(address(server), namespace="default")
    with pytest.raises(RPCError) as missing:
        await elsewhere.get_workflow_handle(case_id).describe()
    assert missing.value.status == RPCStatusCode.NOT_FOUND


async def test_mutual_tls_admits_the_worker_certificate_and_nobody_else(
    server: WorkflowEnvironment, store: LocalStore, pki: Pki, tmp_path: Path
) -> None:
    async with tls_proxy(address(server), pki.server_context()) as proxy:
        variables = {
            "TEMPORAL_NAMESPACE": NAMESPACE,
            "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(pki.ca_pem),
            "TEMPORAL_TLS_CLIENT_CERT_PATH": str(pki.client_pem),
            "TEMPORAL_TLS_CLIENT_KEY_PATH": str(pki.client_key),
        }
        env = temporal_env(proxy.address, **variables)
        connection = load_connection(None, env)
        assert connection.summary()["tls"] == "mtls"

        case_id = await run_case(await connect(connection, TEST_KEYS), store)
        assert set(proxy.common_names()) == {"makegood-worker"}

        # An auditor's command, with the same variables, reads the case through the proxy.
        code, out, err = await makegood(env, "timeline", case_id)
        assert code == 0, err
        assert "refund of 4.80 USD" in out

        # Without the client certificate the proxy turns the client away.
        seen = len(proxy.peers)
        no_cert = {k: v for k, v in env.items() if not k.startswith("TEMPORAL_TLS_CLIENT")}
        with pytest.raises(RuntimeError):
            async with asyncio.timeout(30):
                await connect(load_connection(None, no_cert), TEST_KEYS)
        assert len(proxy.peers) == seen  # no handshake completed


@dataclass
class Listener:
    """A TCP port that counts who connects: proof that a refused process never tried."""

    address: str
    connections: int = 0


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    found = Listener("")

    def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        found.connections += 1
        writer.close()

    tcp = await asyncio.start_server(accept, "127.0.0.1", 0)
    found.address = f"127.0.0.1:{tcp.sockets[0].getsockname()[1]}"
    async with tcp:
        yield found


async def makegood(
    env: dict[str, str], *args: str, entry: str = "starter.py"
) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / entry),
        *args,
        env=env,
        cwd=ROOT,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_the_cli_refuses_bad_settings_with_exit_2_before_connecting(
    listener: Listener, pki: Pki
) -> None:
    # The control: with good settings the CLI does reach the port (which is no Temporal). Only
    # the auditors' commands (and the processes) go to Temporal; people's go to the API.
    code, _, err = await makegood(temporal_env(listener.address), "timeline", "case-T-1")
    assert code == 3 and f"cannot reach Temporal at {listener.address}" in err
    assert listener.connections > 0
    listener.connections = 0

    bad = temporal_env(listener.address, TEMPORAL_TLS_CLIENT_CERT_PATH=str(pki.client_pem))
    code, out, err = await makegood(bad, "timeline", "case-T-1")
    assert (code, out) == (2, "")
    assert err == (
        "makegood: Temporal connection settings refused, nothing was connected:\n"
        f"  TEMPORAL_TLS_CLIENT_CERT_PATH={pki.client_pem}: a client certificate needs its "
        "private key; set TEMPORAL_TLS_CLIENT_KEY_PATH (or tls.client_key_path)\n"
    )
    assert listener.connections == 0


PROCESSES = {
    "makegood worker": (["worker"], {"TEMPORAL_TLS": "maybe"}, 2, "TEMPORAL_TLS=maybe: expected"),
    "makegood api": (["api"], {"TEMPORAL_PROFILE": "prod"}, 2, "TEMPORAL_PROFILE=prod: unknown"),
    "worker.py": (
        [],
        {"MAKEGOOD_TEMPORAL_ADDRESS": "127.0.0.1:7233"},
        1,  # a SystemExit with a message, as for a bad playbook file
        "MAKEGOOD_TEMPORAL_ADDRESS was renamed: set TEMPORAL_ADDRESS instead",
    ),
    "makegood dev": (
        ["dev"],
        {"TEMPORAL_API_KEY": "dev-has-no-tls"},
        2,
        "`makegood dev` runs a local dev server without TLS, but the Temporal settings turn TLS on",
    ),
}


@pytest.mark.parametrize("process", PROCESSES, ids=list(PROCESSES))
async def test_the_processes_stop_on_bad_settings_before_starting_anything(
    process: str, listener: Listener, tmp_path: Path
) -> None:
    args, variables, status, says = PROCESSES[process]
    env = temporal_env(listener.address, MAKEGOOD_DATA_DIR=str(tmp_path / "data"), **variables)
    entry = "worker.py" if process == "worker.py" else "starter.py"
    code, _, err = await makegood(env, *args, entry=entry)
    assert code == status, err
    assert err.startswith("makegood: Temporal connection settings refused, nothing was connected")
    assert says in err and "Traceback" not in err
    assert listener.connections == 0
    assert not (tmp_path / "data").exists()  # no dev server, no local store
