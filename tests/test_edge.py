"""The API's edge, against `makegood api` as its own process on a real dev server: bodies are
cut at the limit while they stream (before any token is checked, and without the process
growing), stalled and abandoned requests neither slow `/health` down nor leave a traceback,
deep JSON is a problem like any other, and a Temporal that is gone is a 503 with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from temporalio.testing import WorkflowEnvironment

from makegood.api.limits import BodyLimit
from makegood.serve import ApiServer
from tests.api_harness import free_port
from tests.deployment import AGENT, cli_environ, run_cli, wait_for_api, with_token
from tests.harness import CONVERTER, ROOT, TICKETS, binary, temporal_env

LIMIT = 64 * 1024  # MAKEGOOD_MAX_BODY_BYTES: the default
MB = 1024 * 1024


@dataclass
class ApiProcess:
    """`makegood api` (no worker in it) with its JSON log in a file, and its dev server."""

    url: str
    proc: asyncio.subprocess.Process
    log: Path
    env: dict[str, str]
    temporal: WorkflowEnvironment
    temporal_address: str
    temporal_stopped: bool = False

    async def stop_temporal(self) -> None:
        await self.temporal.shutdown()
        self.temporal_stopped = True

    def status(self, field: str) -> int:
        """A `/proc/PID/status` figure of the API process, in bytes (VmRSS, VmHWM)."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
        raise AssertionError(f"no {field} for {self.proc.pid}")

    def reset_peak(self) -> None:
        """From now on VmHWM is the peak since this moment (Linux: clear_refs 5)."""
        Path(f"/proc/{self.proc.pid}/clear_refs").write_text("5")

    def logged(self) -> list[dict[str, Any]]:
        """The process's JSON log lines (the SDK core's own warnings are not JSON)."""
        out = []
        for line in self.log.read_text().splitlines():
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
        return out

    def troubles(self) -> list[str]:
        """Every log line that is a warning or worse, or shows a traceback."""
        text = self.log.read_text()
        return [
            line
            for line in text.splitlines()
            if "Traceback" in line
            or any(f'"level": "{lv}"' in line for lv in ("warning", "error", "critical"))
        ]


@contextlib.asynccontextmanager
async def api_process(data: Path) -> AsyncIterator[ApiProcess]:
    port = free_port()
    temporal = await WorkflowEnvironment.start_local(
        port=port,
        data_converter=CONVERTER,
        dev_server_existing_path=binary("temporal"),
        dev_server_log_level="error",
    )
    running: ApiProcess | None = None
    try:
        address = f"127.0.0.1:{port}"
        env = temporal_env(address, **cli_environ(data, free_port(), MAKEGOOD_LOG_LEVEL="INFO"))
        env = with_token(env, None)
        log = data / "api.log"
        with log.open("wb") as out:  # a file, never a pipe that could fill and block the API
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                str(ROOT / "starter.py"),
                "api",
                env=env,
                cwd=data,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            await wait_for_api(env["MAKEGOOD_API_URL"], proc)
            running = ApiProcess(env["MAKEGOOD_API_URL"], proc, log, env, temporal, address)
            yield running
        finally:
            if proc.returncode is None:
                proc.terminate()
            async with asyncio.timeout(30):
                await proc.wait()
    finally:
        if running is None or not running.temporal_stopped:
            await temporal.shutdown()


@pytest.fixture(scope="module")
async def api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ApiProcess]:
    async with api_process(tmp_path_factory.mktemp("edge")) as running:
        yield running


async def health_latency(url: str) -> float:
    """Seconds for `/health` to answer on a new connection (the client made beforehand)."""
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        start = time.perf_counter()
        response = await http.get("/health")
        took = time.perf_counter() - start
    assert response.status_code == 200
    return took


def chunk(data: bytes) -> bytes:
    """One chunk of a `Transfer-Encoding: chunked` body."""
    return b"%x\r\n%s\r\n" % (len(data), data)


def head(path: str, *headers: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: api", "Content-Type: application/json", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def test_a_chunked_upload_is_cut_at_the_limit_without_the_process_growing(
    api: ApiProcess,
) -> None:
    sent = 0

    async def upload() -> AsyncIterator[bytes]:  # 200 MB, no Content-Length: chunked
        nonlocal sent
        piece = b" " * (64 * 1024)
        for _ in range(200 * 16):
            sent += len(piece)
            yield piece

    before = api.status("VmRSS")
    api.reset_peak()
    async with httpx.AsyncClient(base_url=api.url, timeout=60) as http:
        try:  # no token: the limit comes before authentication
            answer: int | None = (await http.post("/cases", content=upload())).status_code
        except httpx.TransportError:  # cut off mid-upload: the server stopped reading
            answer = None
    growth = api.status("VmHWM") - before
    assert answer in (413, None)
    assert sent < 50 * MB, f"the server read {sent / MB:.0f} MB before refusing"
    assert growth < 10 * MB, f"the API process grew by {growth / MB:.1f} MB"
    assert await health_latency(api.url) < 1  # and it still answers


async def test_an_oversized_body_gets_a_problem_report_with_or_without_a_length(
    api: ApiProcess,
) -> None:
    # Chunked: the 413 comes once the limit is passed, and the connection is closed.
    reader, writer = await asyncio.open_connection(*api.url.removeprefix("http://").split(":"))
    body = b"".join(chunk(b" " * 4096) for _ in range(LIMIT // 4096 + 2))
    writer.write(head("/cases", "Transfer-Encoding: chunked") + body)
    await writer.drain()
    async with asyncio.timeout(10):
        response = await reader.read()  # until the server closes
    writer.close()
    status_line, _, rest = response.partition(b"\r\n")
    headers, _, payload = rest.partition(b"\r\n\r\n")
    assert status_line == b"HTTP/1.1 413 Request Entity Too Large"
    assert b"connection: close" in headers.lower()
    assert json.loads(payload) == {
        "detail": f"body larger than {LIMIT} bytes (MAKEGOOD_MAX_BODY_BYTES); nothing was done",
        "problems": [{"field": "(body)", "reason": f"larger than {LIMIT} bytes"}],
    }

    # A declared Content-Length over the limit: refused before a byte of the body is read.
    async with httpx.AsyncClient(base_url=api.url, timeout=30) as http:
        declared = await http.post(
            "/cases", content=b" " * (LIMIT + 1), headers={"content-type": "application/json"}
        )
    assert declared.status_code == 413
    assert declared.json()["problems"] == [
        {"field": "(body)", "reason": f"larger than {LIMIT} bytes"}
    ]


async def test_half_sent_requests_neither_stall_health_nor_leave_tracebacks(
    api: ApiProcess,
) -> None:
    host, port = api.url.removeprefix("http://").split(":")
    stalled = []
    for _ in range(40):  # headers and a quarter of the body, then nothing
        _, writer = await asyncio.open_connection(host, int(port))
        writer.write(head("/cases", "Content-Length: 4000") + b"{" + b" " * 999)
        await writer.drain()
        stalled.append(writer)
    await asyncio.sleep(0.5)  # let the server take them all in

    latencies = [await health_latency(api.url) for _ in range(10)]
    assert max(latencies) < 0.2, f"/health took {max(latencies) * 1000:.0f} ms"

    for writer in stalled:  # every one of them disconnects mid-body
        writer.transport.abort()
    await asyncio.sleep(0.5)
    assert max([await health_latency(api.url) for _ in range(10)]) < 0.2
    assert api.troubles() == []  # no traceback, no error line per disconnect


NESTED = {"field": "(body)", "reason": "the JSON is nested too deeply to read"}


def nested(depth: int, kind: str) -> str:
    return "[" * depth + "]" * depth if kind == "list" else '{"a":' * depth + "1" + "}" * depth


@pytest.mark.parametrize(("depth", "kind"), [(30_000, "list"), (10_000, "dict")])
async def test_deep_json_is_a_problem_with_the_body_never_a_500(
    api: ApiProcess, depth: int, kind: str
) -> None:
    ticket = (TICKETS / "s5-wrong-drink.json").read_text()
    inside = ticket.replace('"wrong_order"', nested(depth // 2, kind))
    assert inside != ticket
    async with httpx.AsyncClient(base_url=api.url, timeout=30) as http:
        for body in (nested(depth, kind), inside):
            assert len(body) <= LIMIT
            response = await http.post(
                "/cases",
                content=body,
                headers={"authorization": f"Bearer {AGENT}", "content-type": "application/json"},
            )
            assert response.status_code == 422, response.text
            assert response.json()["problems"] == [NESTED]

    cli = await run_cli(with_token(api.env, AGENT), "open", "-", stdin=nested(100_000, kind))
    assert (cli.code, cli.out) == (2, "")
    assert cli.err == (
        "makegood: refused, nothing was started or sent:\n"
        "  (body): JSON nested more than 100 levels deep is not read\n"
    )
    assert api.troubles() == []


async def test_a_stalled_body_is_answered_408_and_closed() -> None:
    """The time a body may take, shortened: a real uvicorn server, the middleware alone."""
    seen: list[bytes] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            seen.append((await receive())["body"])
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})

    port = free_port()
    config = uvicorn.Config(
        BodyLimit(app, 1000, timeout_s=0.5), port=port, log_config=None, lifespan="off"
    )
    server = ApiServer(config)
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:  # noqa: ASYNC110 - uvicorn has no started event to await
            await asyncio.sleep(0.02)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(head("/x", "Content-Length: 100") + b"{")
        async with asyncio.timeout(10):
            response = await reader.read()
        writer.close()
        assert response.startswith(b"HTTP/1.1 408 ")
        assert b'"reason":"incomplete"' in response
        async with httpx.AsyncClient(timeout=10) as http:  # a complete body gets through whole
            done = await http.post(f"http://127.0.0.1:{port}/x", content=b"x" * 1000)
        assert done.status_code == 204 and seen == [b"x" * 1000]
    finally:
        server.should_exit = True
        await serving


async def test_temporal_gone_is_a_503_with_the_reason(tmp_path: Path) -> None:
    async with api_process(tmp_path) as running:
        ticket = json.loads((TICKETS / "s5-wrong-drink.json").read_text())
        await running.stop_temporal()
        auth = {"authorization": f"Bearer {AGENT}"}
        async with httpx.AsyncClient(base_url=running.url, timeout=60, headers=auth) as http:
            answers = await asyncio.gather(
                http.post("/cases", json=ticket),
                http.get("/cases"),
                http.get("/cases/case-T-3001"),
                http.post("/cases/case-T-3001/notes", json={"text": "called the customer"}),
            )
            assert (await http.get("/health")).status_code == 200  # the process is fine
        for response in answers:
            assert response.status_code == 503, (response.request.url, response.text)
            assert response.headers["retry-after"] == "5"
            detail = response.json()["detail"]
            assert detail.startswith(f"Temporal is unreachable at {running.temporal_address}: ")
    logged = running.logged()
    unavailable = [e for e in logged if e.get("event") == "temporal_unavailable"]
    assert len(unavailable) == 4 and {e["code"] for e in unavailable} == {"UNAVAILABLE"}
    assert "Traceback" not in running.log.read_text()
