"""One authority path for people: the CLI acts through the API, as the holder of its token.

A dev server, a worker and an API process (`makegood api`) run as in production; the CLI is a
subprocess. Who may do what is the API's role table, applied to the token: no option or body
field can claim another role, and nothing is sent without a token the API knows.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import tomllib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.api_harness import free_port
from tests.deployment import (
    AGENT,
    AUDITOR,
    MANAGER,
    Deployment,
    Result,
    deployed,
    run_cli,
    with_token,
)
from tests.harness import TICKETS

CASE = "case-T-1001"


@pytest.fixture(scope="module")
async def d(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Deployment]:
    async with deployed(tmp_path_factory.mktemp("cli-api")) as dep:
        yield dep


async def to_the_rebooking_approval(d: Deployment) -> None:
    """S1 as far as the manager's approval of a second re-booking, the agent answering."""
    await d.ok("open", str(TICKETS / "s1-missing-car.json"))
    for qid, answer in (
        ("locate-CAR-1-1", "not_found"),
        ("locate-CAR-1-2", "not_found"),
        ("pickup-1", "missing"),
        ("locate-CAR-2-1", "not_found"),
        ("locate-CAR-2-2", "not_found"),
    ):
        await d.question(CASE, qid)
        await d.ok("answer", CASE, qid, answer)
    await d.until(CASE, lambda s: s.approval is not None, "the re-booking approval")


async def test_only_a_managers_token_decides_an_approval_whatever_the_request_claims(
    d: Deployment,
) -> None:
    await to_the_rebooking_approval(d)

    # The option that used to name the decider is gone: argparse refuses it, nothing is sent.
    claimed = await d.cli("approve", CASE, "rebook-2", "--as", "manager:mia")
    assert claimed.code == 2 and "unrecognized arguments: --as manager:mia" in claimed.err
    for token, role in ((AGENT, "an agent"), (AUDITOR, "an auditor")):
        refused = await d.cli("approve", CASE, "rebook-2", token=token)
        assert (refused.code, refused.out) == (1, "")
        assert refused.err == (
            "makegood: not allowed with the token from MAKEGOOD_API_TOKEN: "
            f"approval decisions come from a manager or an ops lead, not {role}\n"
        )
    nobody = await d.cli("approve", CASE, "rebook-2", token=None)
    assert nobody.code == 2 and f"no API token for {d.api_url}" in nobody.err

    # A request made by hand that says it comes from a manager: the token decides, not the body.
    async with httpx.AsyncClient(base_url=d.api_url) as http:
        decision = {"request_id": "rebook-2", "approved": True, "note": "one class up"}
        forged = await http.post(
            f"/cases/{CASE}/approvals",
            json={**decision, "by": {"role": "manager", "id": "mia"}},
            headers={"authorization": f"Bearer {AGENT}"},
        )
        assert forged.status_code == 403
        assert forged.json() == {
            "detail": "approval decisions come from a manager or an ops lead, not an agent"
        }
        status = await d.until(CASE, lambda s: s.approval is not None, "still waiting")
        assert status.approval is not None and status.approval.id == "rebook-2"
        assert not [e for e in status.events if e.kind == "approval"]

        # With a manager's token the decision counts, recorded as the token's holder: a `by`
        # in the body (here someone else's name) is ignored.
        decided = await http.post(
            f"/cases/{CASE}/approvals",
            json={**decision, "by": {"role": "manager", "id": "impostor"}},
            headers={"authorization": f"Bearer {MANAGER}"},
        )
        assert decided.status_code == 200, decided.text
        assert decided.json() == {"case_id": CASE, "detail": "rebook-2 approved"}
    status = await d.until(CASE, lambda s: s.question is not None, "the next question")
    (approval,) = [e for e in status.events if e.kind == "approval"]
    assert approval.by == "manager:dev-manager"
    # The other of the four eyes is the token's holder too: the agent who opened the case.
    assert approval.detail == "rebook-2 approved (case opened by agent:dev-agent): one class up"
    assert "impostor" not in status.model_dump_json()
    answers = {e.by for e in status.events if e.kind == "answer"}
    assert answers == {"agent:dev-agent"}


async def test_a_token_the_api_does_not_know_is_refused_by_name(d: Deployment) -> None:
    forged = await d.cli("list", token="tok-forged")
    assert (forged.code, forged.out) == (2, "")
    assert forged.err == (
        f"makegood: the API at {d.api_url} did not accept the token from MAKEGOOD_API_TOKEN "
        "(unknown token); check it, or run `makegood login`\n"
    )
    config = Path(d.env["XDG_CONFIG_HOME"]) / "makegood" / "config.toml"
    missing = await d.cli("list", token=None)
    assert (missing.code, missing.out) == (2, "")
    assert missing.err == (
        f"makegood: no API token for {d.api_url}: set MAKEGOOD_API_TOKEN, or run "
        f"`makegood login` (which saves it in {config}); nothing was sent\n"
    )


async def test_login_keeps_the_token_private_and_the_environment_wins(d: Deployment) -> None:
    config = Path(d.env["XDG_CONFIG_HOME"]) / "makegood" / "config.toml"

    unknown = await d.cli("login", stdin="tok-forged\n", token=None)
    assert unknown.code == 2
    assert f"the API at {d.api_url} does not know this token; nothing was saved" in unknown.err
    assert not config.exists()

    saved = await d.cli("login", stdin=f"{AUDITOR}\n", token=None)
    assert saved.code == 0, saved.err
    assert saved.out.startswith(f"logged in to {d.api_url}; the token is saved in {config}")
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert stat.S_IMODE(config.parent.stat().st_mode) == 0o700
    assert tomllib.loads(config.read_text()) == {"url": d.api_url, "token": AUDITOR}

    # The saved token is the auditor's: it reads, and the role table refuses it a note.
    without_url = {k: v for k, v in d.env.items() if k != "MAKEGOOD_API_URL"}
    listed = await run_cli(with_token(without_url, None), "list", "--json")
    assert listed.code == 0, listed.err
    note = await d.cli("note", "case-nope", "called the member", token=None)
    assert note.code == 1 and "notes come from an agent or a manager, not an auditor" in note.err
    # MAKEGOOD_API_TOKEN takes precedence over the file: the agent may, the case does not exist.
    as_agent = await d.cli("note", "case-nope", "called the member", token=AGENT)
    assert (as_agent.code, as_agent.err) == (1, "makegood: no case 'case-nope'\n")

    config.chmod(0o644)
    loose = await d.cli("list", token=None)
    assert (loose.code, loose.out) == (2, "")
    assert loose.err == (
        "makegood: API settings refused, nothing was sent:\n"
        f"  {config}: others may read or change it (mode -rw-r--r--); it holds a token: "
        f"chmod 600 {config}\n"
    )

    out = await d.ok("logout", token=None)
    assert out == f"removed {config}\n" and not config.exists()
    gone = await d.cli("list", token=None)
    assert gone.code == 2 and "no API token" in gone.err


@dataclass
class Listener:
    """A TCP port that counts who connects: proof that a refused command sent nothing."""

    url: str
    connections: int = 0


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    found = Listener("")

    def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        found.connections += 1
        writer.close()

    tcp = await asyncio.start_server(accept, "127.0.0.1", 0)
    found.url = f"http://127.0.0.1:{tcp.sockets[0].getsockname()[1]}"
    async with tcp:
        yield found


def own_env(home: Path, **variables: str) -> dict[str, str]:
    """This process's environment without any MAKEGOOD_* setting, a config folder of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKEGOOD_")}
    return {**env, "XDG_CONFIG_HOME": str(home), **variables}


async def cli(env: dict[str, str], home: Path, *args: str) -> Result:
    return await run_cli(env, *args, cwd=home)  # no .env of the checkout


async def test_settings_that_cannot_work_are_refused_before_anything_is_sent(
    listener: Listener, tmp_path: Path
) -> None:
    no_token = await cli(own_env(tmp_path, MAKEGOOD_API_URL=listener.url), tmp_path, "list")
    assert no_token.code == 2 and "no API token" in no_token.err

    config = tmp_path / "makegood" / "config.toml"
    config.parent.mkdir()
    config.write_text('url = "http://127.0.0.1:1"\ntoken = "tok-1"\nuser = "mia"\n')
    config.chmod(0o600)
    env = own_env(
        tmp_path, MAKEGOOD_API_URL="http://makegood.example.com", MAKEGOOD_API_TOKEN="tok 1"
    )
    bad = await cli(env, tmp_path, "status", CASE)
    assert (bad.code, bad.out) == (2, "")
    assert bad.err == (
        "makegood: API settings refused, nothing was sent:\n"
        f"  {config}: unknown key 'user'; the file holds url and token\n"
        "  MAKEGOOD_API_URL=http://makegood.example.com: a token would travel in clear text: "
        "use https:// (plain http only on this host)\n"
        "  MAKEGOOD_API_TOKEN: a token is one word without spaces\n"
    )
    scheme = await cli(own_env(tmp_path, MAKEGOOD_API_URL="ftp://x"), tmp_path, "list")
    assert scheme.code == 2 and "MAKEGOOD_API_URL=ftp://x: expected http(s)://host" in scheme.err
    assert listener.connections == 0

    # The control: with settings that work, the CLI does go to the URL (which is no API).
    env = own_env(tmp_path, MAKEGOOD_API_URL=listener.url, MAKEGOOD_API_TOKEN=AGENT)
    config.unlink()
    tried = await cli(env, tmp_path, "list")
    assert tried.code == 3 and listener.connections > 0, tried.err


async def test_an_api_that_is_down_exits_3_naming_its_url(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    env = own_env(tmp_path, MAKEGOOD_API_URL=url, MAKEGOOD_API_TOKEN=MANAGER)
    for args in (["status", CASE], ["approve", CASE, "compensation"]):
        down = await cli(env, tmp_path, *args)
        assert (down.code, down.out) == (3, "")
        assert down.err.startswith(f"makegood: cannot reach the Makegood API at {url} (")
        assert down.err.endswith("is `make run` (or `makegood api`) up?\n")


async def test_a_bad_ticket_is_refused_before_the_api_is_even_tried(tmp_path: Path) -> None:
    """Exit 2 (the ticket is wrong), not 3 (the API is down): nothing to send, nobody asked."""
    url = f"http://127.0.0.1:{free_port()}"
    env = own_env(tmp_path, MAKEGOOD_API_URL=url, MAKEGOOD_API_TOKEN=MANAGER)
    bad = json.loads((TICKETS / "s5-wrong-drink.json").read_text())
    bad["customer"]["phone"] = "555"
    del bad["incident"]["summary"]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    refused = await cli(env, tmp_path, "open", str(path))
    assert (refused.code, refused.out) == (2, ""), refused.err
    assert "customer.phone: must be an E.164 phone number" in refused.err
    assert "incident.summary: Field required" in refused.err
    assert "cannot reach" not in refused.err
