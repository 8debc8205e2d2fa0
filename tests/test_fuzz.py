"""Schema-driven fuzzing of the intake API (schemathesis): no input may cause a 5xx.

Runs against the real thing: `worker.py --embedded` (dev server, worker, API) in a
subprocess, with every operation of the published OpenAPI document exercised by generated
requests, authenticated as a manager so that they reach the cases and Temporal.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from makegood.api.app import create_app
from makegood.credentials import token_hash
from makegood.settings import Settings
from tests.api_harness import TOKEN_TABLE, free_port
from tests.harness import ROOT, temporal_env

schema = schemathesis.openapi.from_dict(create_app(Settings(api_tokens=TOKEN_TABLE)).openapi())


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
        MAKEGOOD_API_TOKENS=json.dumps({token_hash("manager-token"): "manager:fuzz"}),
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
            headers={"Authorization": "Bearer manager-token", "content-type": "application/json"},
        )
        assert opened.status_code == 201, opened.text
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)
def test_no_request_makes_the_api_fail(case: schemathesis.Case, base_url: str) -> None:
    response = case.call(base_url=base_url, headers={"Authorization": "Bearer manager-token"})
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text}"
    )
