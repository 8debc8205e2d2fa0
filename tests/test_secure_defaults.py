"""Secure by default, as the real processes behave: the public dev credentials are refused
beyond loopback and with real providers, tokens are configured as hashes only, each provider
has its own webhook secret; the refusals name the setting and never show a secret. And the
docker-compose file publishes nothing but the API and takes every secret from the environment.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from makegood.credentials import (
    DEV_TOKENS,
    TokenTable,
    new_token,
    new_webhook_secret,
    token_hash,
)
from makegood.settings import Settings
from tests.api_harness import free_port
from tests.harness import ROOT, temporal_env

HEADER = "makegood: settings refused, nothing was started:\n"
API_SECRETS = (
    "MAKEGOOD_ZENDESK_SECRET",
    "MAKEGOOD_TELEPHONY_WEBHOOK_SECRET",
    "MAKEGOOD_PAYMENTS_WEBHOOK_SECRET",
    "MAKEGOOD_SMS_WEBHOOK_SECRET",
    "MAKEGOOD_WEB_SECRET",
)


@dataclass
class Temporal:
    """A TCP port standing in for Temporal that counts who connects: a refused process
    never tries; one that passed the checks does."""

    address: str
    connections: int = 0
    connected: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture
async def temporal() -> AsyncIterator[Temporal]:
    found = Temporal("")

    def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        found.connections += 1
        found.connected.set()
        writer.close()

    tcp = await asyncio.start_server(accept, "127.0.0.1", 0)
    found.address = f"127.0.0.1:{tcp.sockets[0].getsockname()[1]}"
    async with tcp:
        yield found


def clean_env(address: str, **variables: str) -> dict[str, str]:
    """Only these MAKEGOOD_* settings (none of the developer's), and Temporal at `address`."""
    env = {k: v for k, v in temporal_env(address).items() if not k.startswith("MAKEGOOD_")}
    return {**env, "MAKEGOOD_API_PORT": str(free_port()), **variables}


def nothing_in(folder: Path) -> bool:
    """No dev server file, no local store: the process stopped before starting anything."""
    return not any(folder.iterdir())


def real_api_credentials() -> dict[str, str]:
    return {
        "MAKEGOOD_API_TOKENS": json.dumps({token_hash(new_token()): "agent:sam"}),
        "MAKEGOOD_ZENDESK_SECRET": new_token(),
        "MAKEGOOD_TELEPHONY_WEBHOOK_SECRET": new_webhook_secret(),
        "MAKEGOOD_PAYMENTS_WEBHOOK_SECRET": new_webhook_secret(),
        "MAKEGOOD_SMS_WEBHOOK_SECRET": new_webhook_secret(),
        "MAKEGOOD_WEB_SECRET": new_webhook_secret(),
    }


async def run(
    env: dict[str, str], cwd: Path, *args: str, entry: str = "starter.py", stdin: str = ""
) -> tuple[int, str, str]:
    """A process of ours in `cwd` (so no .env of the checkout is read); it must exit."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / entry),
        *args,
        env=env,
        cwd=cwd,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, err = await proc.communicate(stdin.encode())
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


PROCESSES: dict[str, tuple[list[str], str, int]] = {
    "makegood api": (["api"], "starter.py", 2),
    "makegood worker --api": (["worker", "--api"], "starter.py", 2),
    "worker.py --api": (["--api"], "worker.py", 1),  # a SystemExit with its message
    "makegood dev": (["dev"], "starter.py", 2),
}


@pytest.mark.parametrize("process", PROCESSES, ids=list(PROCESSES))
async def test_every_api_process_refuses_the_dev_credentials_on_all_interfaces(
    process: str, temporal: Temporal, tmp_path: Path
) -> None:
    args, entry, status = PROCESSES[process]
    env = clean_env(temporal.address, MAKEGOOD_API_HOST="0.0.0.0")
    code, out, err = await run(env, tmp_path, *args, entry=entry)
    assert (code, out) == (status, ""), err
    assert err.startswith(HEADER) and "Traceback" not in err
    assert (
        "but the intake API listens on "
        f"0.0.0.0:{env['MAKEGOOD_API_PORT']} (MAKEGOOD_API_HOST):" in err
    )
    assert "MAKEGOOD_API_TOKENS is not set, so the README's dev tokens" in err
    assert "`makegood token new ROLE:ID`" in err
    for name in API_SECRETS:
        assert f"{name} is not set, so the repository's public dev secret" in err
    assert temporal.connections == 0  # refused before connecting
    assert nothing_in(tmp_path)  # no dev server, no local store

    # With credentials of its own the same process passes the check and goes on to Temporal.
    env |= real_api_credentials()
    if process == "makegood dev":  # starts its own server: it must be up before it connects
        env["TEMPORAL_ADDRESS"] = f"127.0.0.1:{free_port()}"
        env["MAKEGOOD_UI_PORT"] = str(free_port())
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / entry), *args, env=env, cwd=tmp_path,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    logs = ""
    try:
        async with asyncio.timeout(60):
            if process != "makegood dev":
                await temporal.connected.wait()
            while "dev_server_started" not in logs and process == "makegood dev":
                logs += (await proc.stderr.readline()).decode()
    finally:
        proc.terminate()
        logs += (await proc.stderr.read()).decode()
        await proc.wait()
    assert "settings refused" not in logs


async def test_makegood_dev_counts_its_temporal_server_and_ui_as_listeners(
    temporal: Temporal, tmp_path: Path
) -> None:
    port, ui = free_port(), free_port()
    env = clean_env(f"0.0.0.0:{port}", MAKEGOOD_UI_PORT=str(ui))  # the API on 127.0.0.1
    code, _, err = await run(env, tmp_path, "dev")
    assert code == 2 and err.startswith(HEADER)
    assert (
        f"but the Temporal dev server listens on 0.0.0.0:{port} (TEMPORAL_ADDRESS); and its web "
        f"UI listens on 0.0.0.0:{ui} (TEMPORAL_ADDRESS):" in err
    )
    assert "MAKEGOOD_API_TOKENS is not set" in err
    assert nothing_in(tmp_path)


async def test_real_providers_refuse_the_dev_credentials_even_on_loopback(
    temporal: Temporal, tmp_path: Path
) -> None:
    # Real people get emails: the API's dev secrets are refused though it listens on loopback.
    mine = real_api_credentials()
    env = clean_env(temporal.address, MAKEGOOD_EMAIL="smtp", **mine)
    del env["MAKEGOOD_ZENDESK_SECRET"]
    code, _, err = await run(env, tmp_path, "--api", entry="worker.py")
    assert code == 1 and err.startswith(HEADER), err
    assert "but real providers are configured (MAKEGOOD_EMAIL=smtp):" in err
    assert "MAKEGOOD_ZENDESK_SECRET is not set" in err
    for name in ("MAKEGOOD_API_TOKENS", *API_SECRETS[1:]):
        assert name not in err  # the ones that are set are fine
    for value in mine.values():
        assert value not in err

    # A worker without the API signs requests to HTTP providers: the provider secret counts.
    http = clean_env(temporal.address, MAKEGOOD_PAYMENTS="http")
    code, _, err = await run(http, tmp_path, "worker")
    assert code == 2 and err == HEADER + (
        "  MAKEGOOD_WEB_SECRET is not set, so the repository's public dev secret would be used, "
        "but real providers are configured (MAKEGOOD_PAYMENTS=http): anyone could forge a "
        "customer's link or a console session; set a secret the API and the workers alone "
        "share (`makegood token secret` makes one)\n"
        "  MAKEGOOD_PROVIDER_SECRET is not set, so the repository's public dev secret would be "
        "used to sign the requests to real providers (MAKEGOOD_PAYMENTS=http); set a secret "
        "shared with those providers alone (`makegood token secret` makes one)\n"
    )
    # So does reconcile, which reads the ledger of the HTTP payment provider.
    code, _, err = await run(http, tmp_path, "reconcile", "--dir", str(ROOT / "tests/histories"))
    assert code == 2 and "MAKEGOOD_PROVIDER_SECRET is not set" in err, err
    assert temporal.connections == 0
    assert nothing_in(tmp_path)

    # With secrets of its own the worker goes on to Temporal.
    http["MAKEGOOD_PROVIDER_SECRET"] = new_token()
    http["MAKEGOOD_WEB_SECRET"] = new_token()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "starter.py"), "worker", env=http, cwd=tmp_path,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await asyncio.wait_for(temporal.connected.wait(), 60)
    finally:
        proc.terminate()
        await proc.wait()


async def test_tokens_in_clear_text_and_shared_or_renamed_secrets_are_refused_anywhere(
    temporal: Temporal, tmp_path: Path
) -> None:
    token, old = new_token(), new_webhook_secret()
    shared = new_webhook_secret()
    env = clean_env(
        temporal.address,  # on loopback, with local providers
        MAKEGOOD_API_TOKENS=json.dumps({token: "agent:sam", "sha256:abc": "manager:mia"}),
        MAKEGOOD_WEBHOOK_SECRET=old,
        MAKEGOOD_TELEPHONY_WEBHOOK_SECRET=shared,
        MAKEGOOD_PAYMENTS_WEBHOOK_SECRET=shared,
        MAKEGOOD_ZENDESK_SECRET="",
    )
    code, out, err = await run(env, tmp_path, "api")
    assert (code, out) == (2, "")
    problems = err.removeprefix(HEADER).splitlines()
    assert [p.strip().split(":")[0] for p in problems] == [
        "MAKEGOOD_API_TOKENS",
        "MAKEGOOD_API_TOKENS",
        "MAKEGOOD_WEBHOOK_SECRET was split in two",
        "MAKEGOOD_ZENDESK_SECRET",
        "MAKEGOOD_TELEPHONY_WEBHOOK_SECRET and MAKEGOOD_PAYMENTS_WEBHOOK_SECRET are the same "
        "secret",
    ]
    assert "the entry for agent:sam: the token is in clear text" in problems[0]
    assert '`printf %s "$TOKEN" | makegood token hash`' in problems[0]
    assert "the entry for manager:mia: the key must be sha256: and 64 hex digits" in problems[1]
    assert "set MAKEGOOD_TELEPHONY_WEBHOOK_SECRET and MAKEGOOD_PAYMENTS_WEBHOOK_SECRET" in err
    for secret in (token, old, shared, old.removeprefix("whsec_")):
        assert secret not in err
    assert temporal.connections == 0

    # A token and its owner swapped: the message cannot tell which is which, so shows neither.
    swapped = clean_env(temporal.address, MAKEGOOD_API_TOKENS=json.dumps({"agent:sam": token}))
    code, _, err = await run(swapped, tmp_path, "api")
    assert code == 2 and 'entry 1 of 1: expected "role:id" as its value' in err
    assert token not in err


async def test_token_commands_make_what_the_api_accepts(tmp_path: Path) -> None:
    env = clean_env("127.0.0.1:1")
    code, out, _ = await run(env, tmp_path, "token", "new", "auditor:ann")
    assert code == 0
    lines = out.splitlines()
    token, entry = lines[1].strip(), lines[3].strip()
    assert re.fullmatch(r"mg_[A-Za-z0-9_-]{43}", token)
    table = json.loads("{" + entry + "}")
    assert table == {token_hash(token): "auditor:ann"}
    assert str(TokenTable.parse(table).actor(token)) == "auditor:ann"
    assert TokenTable.parse(table).actor(token + "x") is None

    code, out, _ = await run(env, tmp_path, "token", "hash", "agent:sam", stdin=token + "\n")
    assert (code, out) == (0, f'"{token_hash(token)}": "agent:sam"\n')
    code, out, _ = await run(env, tmp_path, "token", "hash", stdin="dev-agent-token")
    assert out == "sha256:461ebf6d4b05429948791eef4c4b12032c438a092bee97eeca46ec0bb29806a2\n"

    code, out, err = await run(env, tmp_path, "token", "new", "customer:m-42")
    assert (code, out) == (
        2,
        "",
    ) and "may carry agent, manager, ops_lead, auditor, not customer:m-42" in err
    code, out, err = await run(env, tmp_path, "token", "hash", token, stdin=token)  # by mistake
    assert (code, out) == (2, "") and "expected ROLE:ID" in err and token not in err

    code, out, _ = await run(env, tmp_path, "token", "secret")
    secret = out.strip()
    assert code == 0 and secret.startswith("whsec_") and secret != new_webhook_secret()
    assert nothing_in(tmp_path)  # no configuration read, nothing written


def test_the_default_token_table_holds_the_documented_dev_tokens_as_hashes() -> None:
    factory = Settings.model_fields["api_tokens"].default_factory
    assert factory is not None
    table = factory()  # type: ignore[call-arg]
    assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", key) for key in table)
    dev = TokenTable.parse(table)
    assert {token: str(dev.actor(token)) for token in DEV_TOKENS} == DEV_TOKENS
    readme = (ROOT / "README.md").read_text()
    assert all(f"`{token}`" in readme for token in DEV_TOKENS)


def _interpolations(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [v for item in value.values() for v in _interpolations(item)]
    if isinstance(value, list):
        return [v for item in value for v in _interpolations(item)]
    return re.findall(r"\$\{[^}]*\}", str(value))


def test_compose_publishes_only_the_api_and_takes_every_secret_from_the_environment() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services: dict[str, Any] = compose["services"]
    published = {
        name: [str(p) for p in service.get("ports", [])] for name, service in services.items()
    }
    assert published == {
        "postgresql": [],
        "temporal-schema": [],
        "temporal": [],  # the frontend is full authority over every case: never published
        "temporal-setup": [],
        "temporal-ui": ["127.0.0.1:8080:8080"],  # unauthenticated: this host only
        "worker": [],
        "api": ["8000:8080"],  # the intake API, which authenticates every caller
    }
    # The API in a process of its own: it never shares an event loop with workflow tasks.
    assert services["api"]["command"] == ["makegood", "api"]
    assert "--api" not in services["worker"]["command"]
    secret_names = ("TOKENS", "SECRET", "PASSWORD", "PWD", "KEYS", "_KEY")
    for name, service in services.items():
        env = service.get("environment", {})
        assert isinstance(env, dict), f"{name}: environment as a mapping"
        for key, value in env.items():
            if key.endswith(secret_names):
                assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", str(value)), (name, key, value)
    required = {v.split(":?")[0][2:] for v in _interpolations(services) if ":?" in v}
    assert required == {
        "POSTGRES_PASSWORD",
        "MAKEGOOD_API_TOKENS",
        "MAKEGOOD_ZENDESK_SECRET",
        "MAKEGOOD_TELEPHONY_WEBHOOK_SECRET",
        "MAKEGOOD_PAYMENTS_WEBHOOK_SECRET",
        "MAKEGOOD_SMS_WEBHOOK_SECRET",
        "MAKEGOOD_PROVIDER_SECRET",
        "MAKEGOOD_WEB_SECRET",
        "MAKEGOOD_PAYLOAD_KEYS",
        "MAKEGOOD_PSEUDONYM_KEY",
    }
    # No default for anything secret (`${VAR:-default}` would quietly stand in for it); the
    # payload key id, which names a key, the retention, the archive's place and the address
    # customers reach the API at are no secrets.
    defaults = [v for v in _interpolations(services) if ":?" not in v]
    assert set(defaults) == {
        "${MAKEGOOD_PAYLOAD_KEY_ID:-}",
        "${MAKEGOOD_RETENTION_DAYS:-30}",
        "${MAKEGOOD_ARCHIVE_STORE:-}",
        "${MAKEGOOD_OTLP_ENDPOINT:-}",
        "${MAKEGOOD_PUBLIC_URL:-http://localhost:8000}",
    }
    api = services["api"]["environment"]
    assert api["MAKEGOOD_API_HOST"] == "0.0.0.0" and "MAKEGOOD_WEBHOOK_SECRET" not in api
    # The worker and the API use PostgreSQL; the password is PGPASSWORD's, never in the URL.
    for name in ("worker", "api"):
        env = services[name]["environment"]
        assert env["MAKEGOOD_DATABASE_URL"].startswith("postgresql://temporal@postgresql:"), name
        assert env["PGPASSWORD"].startswith("${POSTGRES_PASSWORD:?"), name
