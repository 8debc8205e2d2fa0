"""Schema-driven fuzzing of the intake API (schemathesis), with credentials that get in.

Runs against the real thing: `worker.py --embedded` (dev server, worker, API) in a
subprocess. Every operation of the published OpenAPI document is exercised by generated
requests (valid ones and, for most, invalid ones), each carrying what gets it past the door:

- a bearer token of a role the role table allows for that route (`credentials`), so the
  generated bodies reach the cases and Temporal instead of stopping at 401/403;
- for the webhooks, a signature computed over the very bytes sent: Zendesk's HMAC of
  timestamp + body, or Standard Webhooks' with the provider's own secret and a fresh id.

Every answer is held to the document (status code declared, content type declared, body
valid against the declared schema) and none may be a 5xx. Requests start from the document's
examples (a ticket, a Zendesk body, provider events), and half the generated case ids are
swapped for a case that exists, so actions meet a live case (200, 409, 429) and not only 404.

Not stateful: schemathesis' state machine (links it infers, e.g. POST /cases -> its case id)
chooses each next step from what earlier answers held. Against a live server whose state moves
on (a ticket opens once and is a duplicate after, cases change stage, two identical Zendesk
deliveries in one second are a replay) the same choices then draw differently, and Hypothesis
stops with FlakyStrategyDefinition in about two runs of five, whatever the seed. The swapped
case ids give the stateless run most of what the links would.

Deterministic: a fixed seed. Failures are kept in Hypothesis' example database under
`.hypothesis/fuzz/` at the repository root (ignored by git), and replay first on the next run;
under CI (Hypothesis' `ci` profile: derandomized) there is no database.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, seed, settings
from hypothesis.database import DirectoryBasedExampleDatabase
from schemathesis.core import NotSet
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from makegood.api.app import create_app
from makegood.api.auth import zendesk_signature
from makegood.domain import roles
from makegood.settings import Settings
from tests.api_harness import (
    PAYMENTS_SECRET,
    SECRETS,
    TELEPHONY_SECRET,
    TOKEN_TABLE,
    ZENDESK_SECRET,
    free_port,
    guarded_routes,
)
from tests.harness import ROOT, temporal_env

APP = create_app(Settings(api_tokens=TOKEN_TABLE))
schema = schemathesis.openapi.from_dict(APP.openapi())

CHECKS: Final = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
DATABASE: Final = DirectoryBasedExampleDatabase(ROOT / ".hypothesis" / "fuzz")
SEED: Final = 20_260_111
FUZZ: Final = settings(
    max_examples=50,
    deadline=None,
    # Hypothesis' CI profile (CI set) derandomizes and keeps no database: runs are repeatable.
    database=None if settings().derandomize else DATABASE,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # no shrinking: report, replay later
    suppress_health_check=list(HealthCheck),
)


def _token_roles() -> dict[tuple[str, str], str]:
    """(method, path) -> a role the table allows there; the first allowed one with a token."""
    out = {}
    for method, path, action in guarded_routes(APP):
        allowed = [r for r in roles.allowed(action) if r in roles.TOKEN_ROLES]
        out[(method, path)] = allowed[0]
    return out


ROLE_FOR: Final = _token_roles()
SEEDED: Final = "case-T-1001"  # opened by the fixture from examples/tickets/s1-missing-car.json


def credentials(case: schemathesis.Case) -> dict[str, Any]:
    """`case.call` keyword arguments that authenticate the request as its route expects."""
    case_id = (case.path_parameters or {}).get("case_id")
    if isinstance(case_id, str) and len(case_id) % 2:
        # Half the generated ids (chosen by the id, so that the choice replays) become the
        # case the fixture opened: actions meet a live case, not only 404.
        case.path_parameters = {**(case.path_parameters or {}), "case_id": SEEDED}
    key = (case.method.upper(), case.path)
    if key in ROLE_FOR:
        return {"headers": {"Authorization": f"Bearer {ROLE_FOR[key]}-token"}}
    if case.path == "/webhooks/zendesk" or case.path in SECRETS:
        return signed(case)
    if case.path == "/codec/login" and isinstance(case.body, dict):
        # The sign-in form takes the token in its body: a known one of each kind, or the
        # generated one, chosen by the generated one so that the choice replays.
        pick = ["manager", "auditor", "agent", None][len(str(case.body.get("token"))) % 4]
        if pick:
            case.body = {**case.body, "token": f"{pick}-token"}
    return {}


def signed(case: schemathesis.Case) -> dict[str, Any]:
    """The body as the bytes to send, and the signature of those bytes."""
    if isinstance(case.body, NotSet):
        body = b""
    elif isinstance(case.body, bytes):  # a negative case may send what is not JSON at all
        body = case.body
    else:
        body = json.dumps(case.body).encode()
    now = datetime.now(UTC)
    if case.path == "/webhooks/zendesk":
        stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        headers = {
            "x-zendesk-webhook-signature": zendesk_signature(ZENDESK_SECRET, stamp, body),
            "x-zendesk-webhook-signature-timestamp": stamp,
        }
    else:
        msg_id = f"msg_{uuid.uuid4().hex}"
        headers = {
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": standard_signature(SECRETS[case.path], msg_id, now, body),
        }
    media_type = case.media_type or "application/json"
    return {"headers": {"content-type": media_type, **headers}, "data": body}


def standard_signature(secret: str, msg_id: str, at: datetime, body: bytes) -> str:
    """Standard Webhooks' v1 signature over bytes (the library signs text only: a generated
    body that is no UTF-8 is still signed, and refused by the server with 401)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{int(at.timestamp())}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data: Path = tmp_path_factory.mktemp("fuzz")
    api_port = free_port()
    env = temporal_env(
        f"127.0.0.1:{free_port()}",
        MAKEGOOD_UI_PORT=str(free_port()),
        MAKEGOOD_API_PORT=str(api_port),
        MAKEGOOD_DATA_DIR=str(data),
        MAKEGOOD_LOG_LEVEL="WARNING",
        MAKEGOOD_API_TOKENS=json.dumps(TOKEN_TABLE),
        MAKEGOOD_ZENDESK_SECRET=ZENDESK_SECRET,
        MAKEGOOD_TELEPHONY_WEBHOOK_SECRET=TELEPHONY_SECRET,
        MAKEGOOD_PAYMENTS_WEBHOOK_SECRET=PAYMENTS_SECRET,
    )
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "worker.py"), "--embedded"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{api_port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            raise AssertionError("the embedded stack never became ready")
        # Something to find: a case the generated requests can act on.
        body = (ROOT / "examples" / "tickets" / "s1-missing-car.json").read_text()
        opened = httpx.post(
            f"{url}/cases",
            content=body,
            headers={"Authorization": "Bearer agent-token", "content-type": "application/json"},
        )
        assert opened.status_code == 201, opened.text
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


@schema.parametrize()
@FUZZ
@seed(SEED)
def test_every_answer_matches_the_document(case: schemathesis.Case, base_url: str) -> None:
    response = case.call(base_url=base_url, **credentials(case))
    case.validate_response(response, checks=CHECKS)
