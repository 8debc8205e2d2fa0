"""Makegood deployed as separate processes on the real `temporal` dev server: a worker, an API
process (`makegood api`), and the CLI run as a subprocess against that API with a token."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import signal
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from makegood.adapters.local.store import LocalStore
from makegood.cases import case_status
from makegood.credentials import token_hash
from makegood.domain.case import CaseStatus
from tests.api_harness import PAYMENTS_SECRET, TELEPHONY_SECRET, ZENDESK_SECRET, free_port
from tests.harness import CONVERTER, ROOT, binary, temporal_env

WEB_SECRET = "test-web-secret-of-this-suite-0123456789"
SMS_SECRET = "whsec_" + base64.b64encode(b"test-sms-replies-secret-0123456").decode()
# The tokens the README's walk-through uses: those `make run` ships with for loopback use.
AGENT, MANAGER, AUDITOR = "dev-agent-token", "dev-manager-token", "dev-auditor-token"
DEV_TOKENS = {
    AGENT: "agent:dev-agent",
    MANAGER: "manager:dev-manager",
    AUDITOR: "auditor:dev-auditor",
}


@dataclass
class Result:
    code: int
    out: str
    err: str


async def run_cli(
    env: Mapping[str, str], *args: str, stdin: str | None = None, cwd: Path = ROOT
) -> Result:
    """`makegood ARGS` as its own process."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "starter.py"),
        *args,
        env=dict(env),
        cwd=cwd,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, err = await proc.communicate(stdin.encode() if stdin else None)
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


def with_token(env: Mapping[str, str], token: str | None) -> dict[str, str]:
    """The environment with MAKEGOOD_API_TOKEN set to `token`, or without it."""
    out = {k: v for k, v in env.items() if k != "MAKEGOOD_API_TOKEN"}
    return out if token is None else {**out, "MAKEGOOD_API_TOKEN": token}


async def wait_for_api(url: str, process: asyncio.subprocess.Process | None = None) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=2) as http:
        for _ in range(300):
            if process is not None and process.returncode is not None:
                said = (await process.stderr.read()).decode()[-2000:] if process.stderr else ""
                raise AssertionError(
                    f"the process serving {url} exited ({process.returncode}): {said}"
                )
            with contextlib.suppress(httpx.TransportError):
                if (await http.get("/health")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise AssertionError(f"no API at {url}")


@dataclass
class Deployment:
    """A worker process, an API process and the environment the CLI runs with."""

    client: Client
    env: dict[str, str]
    data: Path
    worker: asyncio.subprocess.Process | None = None
    api: asyncio.subprocess.Process | None = None

    @property
    def api_url(self) -> str:
        return self.env["MAKEGOOD_API_URL"]

    async def _spawn(self, *args: str) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            *args,
            env=self.env,
            cwd=ROOT,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )

    async def start_worker(self, *args: str) -> None:
        self.worker = await self._spawn(str(ROOT / "worker.py"), *args)

    async def another_worker(self) -> asyncio.subprocess.Process:
        """One more worker process on the same task queue (scaled out); the caller stops it."""
        return await self._spawn(str(ROOT / "worker.py"))

    async def stop_worker(self, sig: signal.Signals = signal.SIGTERM) -> tuple[int, str]:
        assert self.worker is not None
        code, logs = await stop(self.worker, sig)
        self.worker = None
        return code, logs

    async def start_api(self) -> None:
        """`makegood api`: the people's door, a process of its own."""
        self.api = await self._spawn(str(ROOT / "starter.py"), "api")
        await wait_for_api(self.api_url, self.api)

    async def restart_api(self) -> None:
        """A new API process, e.g. to read changed settings."""
        assert self.api is not None
        await stop(self.api)
        await self.start_api()

    async def cli(self, *args: str, stdin: str | None = None, token: str | None = AGENT) -> Result:
        """The CLI with `token` as MAKEGOOD_API_TOKEN (None: no token at all)."""
        return await run_cli(with_token(self.env, token), *args, stdin=stdin)

    async def ok(self, *args: str, token: str | None = AGENT) -> str:
        result = await self.cli(*args, token=token)
        assert result.code == 0, f"makegood {' '.join(args)}: {result.err}"
        return result.out

    async def until(self, case_id: str, predicate: Any, what: str) -> CaseStatus:
        """The case's status as Temporal has it (not through the API), once `predicate` holds."""
        async with asyncio.timeout(30):
            while True:
                try:
                    status = await case_status(self.client, case_id)
                    if predicate(status):
                        return status
                except Exception:  # not started yet, or no worker to answer the query
                    pass
                await asyncio.sleep(0.05)
        raise AssertionError(what)  # pragma: no cover

    async def question(self, case_id: str, qid: str) -> CaseStatus:
        return await self.until(
            case_id, lambda s: s.question is not None and s.question.id == qid, qid
        )

    async def rows(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        store = await LocalStore(self.data / "adapters.sqlite").open()
        try:
            return await store.rows(sql, *params)
        finally:
            await store.close()


async def stop(
    process: asyncio.subprocess.Process, sig: signal.Signals = signal.SIGTERM
) -> tuple[int, str]:
    assert process.stderr is not None
    if process.returncode is None:
        process.send_signal(sig)
    async with asyncio.timeout(30):
        logs = (await process.stderr.read()).decode()
        code = await process.wait()
    return code, logs


def cli_environ(data: Path, api_port: int, **variables: str) -> dict[str, str]:
    """What the processes and the CLI share besides Temporal's address: the data folder, the
    API's port and tokens (as hashes), the providers' webhook secrets, and a config folder of
    the test's own (never the developer's ~/.config/makegood)."""
    return {
        "MAKEGOOD_DATA_DIR": str(data),
        "MAKEGOOD_API_PORT": str(api_port),
        "MAKEGOOD_API_URL": f"http://127.0.0.1:{api_port}",
        "MAKEGOOD_API_TOKENS": json.dumps({token_hash(t): who for t, who in DEV_TOKENS.items()}),
        "MAKEGOOD_TELEPHONY_WEBHOOK_SECRET": TELEPHONY_SECRET,
        "MAKEGOOD_PAYMENTS_WEBHOOK_SECRET": PAYMENTS_SECRET,
        "MAKEGOOD_ZENDESK_SECRET": ZENDESK_SECRET,
        # Not the public dev one: deployments with a real (HTTP) provider refuse that.
        "MAKEGOOD_WEB_SECRET": WEB_SECRET,
        "MAKEGOOD_SMS_WEBHOOK_SECRET": SMS_SECRET,
        "XDG_CONFIG_HOME": str(data / "config-home"),
        "MAKEGOOD_LOG_FORMAT": "json",
        **variables,
    }


@contextlib.asynccontextmanager
async def deployed(data: Path, **environ: str) -> AsyncIterator[Deployment]:
    """A dev server, a worker and an API process on it; `environ` adds MAKEGOOD_* settings."""
    port = free_port()
    async with await WorkflowEnvironment.start_local(
        port=port,
        data_converter=CONVERTER,
        dev_server_existing_path=binary("temporal"),
        dev_server_log_level="error",
    ) as env:
        variables = temporal_env(
            f"127.0.0.1:{port}",
            **cli_environ(data, free_port(), MAKEGOOD_TASK_QUEUE=f"e2e-{port}", **environ),
        )
        dep = Deployment(env.client, with_token(variables, None), data)
        await dep.start_worker()
        try:
            await dep.start_api()
            yield dep
        finally:
            if dep.api is not None:
                await stop(dep.api)
            if dep.worker is not None:
                await dep.stop_worker()
