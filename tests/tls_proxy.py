"""Test PKI and a TLS terminator for the dev server, which has no TLS options of its own.

`temporal server start-dev` (temporal CLI 1.9) cannot serve TLS, so mTLS tests put this proxy
in front of it, as a load balancer would sit in front of a real frontend: it demands a client
certificate signed by the test CA, speaks HTTP/2 (ALPN h2) to the client, and passes the bytes
through to the dev server's plain port.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trustme


@dataclass(frozen=True)
class Pki:
    """A CA, the proxy's certificate and a worker's client certificate, as PEM files."""

    ca: trustme.CA
    server: trustme.LeafCert
    ca_pem: Path
    client_pem: Path
    client_key: Path

    @classmethod
    def create(cls, folder: Path) -> Pki:
        ca = trustme.CA()
        server = ca.issue_cert("127.0.0.1", "localhost")
        client = ca.issue_cert("worker.makegood.test", common_name="makegood-worker")
        ca_pem, client_pem, client_key = (
            folder / "ca.pem",
            folder / "client.pem",
            folder / "client.key",
        )
        ca.cert_pem.write_to_path(str(ca_pem))
        client.cert_chain_pems[0].write_to_path(str(client_pem))
        client.private_key_pem.write_to_path(str(client_key))
        return cls(ca, server, ca_pem, client_pem, client_key)

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.server.configure_cert(context)
        self.ca.configure_trust(context)
        context.verify_mode = ssl.CERT_REQUIRED  # mutual TLS: no client certificate, no entry
        context.set_alpn_protocols(["h2"])  # gRPC
        return context


@dataclass
class TlsProxy:
    address: str
    peers: list[dict[str, Any]] = field(default_factory=list)  # client certificates shown

    def common_names(self) -> list[str]:
        return [
            value
            for peer in self.peers
            for rdn in peer.get("subject", ())
            for key, value in rdn
            if key == "commonName"
        ]


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.close()


@contextlib.asynccontextmanager
async def tls_proxy(upstream: str, context: ssl.SSLContext) -> AsyncIterator[TlsProxy]:
    """Terminate TLS on a free loopback port and forward each connection to `upstream`."""
    host, _, port = upstream.rpartition(":")
    proxy = TlsProxy(address="")
    tasks: set[asyncio.Task[Any]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        proxy.peers.append(writer.get_extra_info("peercert") or {})
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.create_task(handle(reader, writer))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    server = await asyncio.start_server(accept, "127.0.0.1", 0, ssl=context)
    proxy.address = f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        yield proxy
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
