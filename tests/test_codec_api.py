"""The codec endpoint the Temporal UI decrypts payloads with, over real HTTP on the intake API:
tokens and roles, the UI's CORS preflight, the sign-in cookie, and real payloads of a case."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format

from makegood.adapters.local.store import LocalStore
from makegood.domain import roles
from makegood.privacy.codec import data_converter
from makegood.privacy.keys import KeyRing
from tests.api_harness import Api, running_api
from tests.harness import binary, temporal_env
from tests.test_api import raw

UI = "http://localhost:8233"
PLAIN = {"metadata": {"encoding": base64.b64encode(b"json/plain").decode()}}


def plain(text: str) -> dict[str, Any]:
    return {**PLAIN, "data": base64.b64encode(f'"{text}"'.encode()).decode()}


@pytest.fixture
async def api(tmp_path: Path, store: LocalStore, task_queue: str) -> AsyncIterator[Api]:
    async with running_api(tmp_path, store, task_queue) as running:
        yield running


async def test_the_codec_needs_a_token_and_a_role_that_may(api: Api) -> None:
    body = {"payloads": [plain("hello")]}
    for path in ("/codec/decode", "/codec/encode"):
        response = await api.http.post(path, json=body)
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"] == "Bearer"
        response = await api.http.post(path, json=body, headers={"Authorization": "Bearer nope"})
        assert response.status_code == 401
    refused = await api.http.post("/codec/decode", json=body, headers=api.auth("agent"))
    assert refused.status_code == 403
    assert refused.json() == {"detail": roles.refusal("agent", roles.DECODE)}
    assert refused.json()["detail"] == (
        "payloads are decrypted for a manager or an auditor, not an agent"
    )
    refused = await api.http.post("/codec/encode", json=body, headers=api.auth("auditor"))
    assert refused.status_code == 403


async def test_payloads_round_trip_and_a_cases_real_input_decodes(api: Api) -> None:
    sealed = await api.http.post(
        "/codec/encode", json={"payloads": [plain("Mia Chen")]}, headers=api.auth("manager")
    )
    assert sealed.status_code == 200, sealed.text
    (payload,) = sealed.json()["payloads"]
    assert base64.b64decode(payload["metadata"]["encoding"]) == b"binary/encrypted"
    assert b"Mia Chen" not in base64.b64decode(payload["data"])
    opened = await api.http.post("/codec/decode", json=sealed.json(), headers=api.auth("auditor"))
    assert opened.json() == {"payloads": [plain("Mia Chen")]}

    # What the UI sends: a payload straight out of a case's history.
    assert (await api.post("/cases", raw("s5-wrong-drink.json"))).status_code == 201
    history = await api.client.get_workflow_handle("case-T-3001").fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    wire = {"payloads": [json_format.MessageToDict(p) for p in started.input.payloads]}
    assert "Mia Chen" not in str(wire)
    decoded = await api.http.post("/codec/decode", json=wire, headers=api.auth("manager"))
    assert decoded.status_code == 200, decoded.text
    data = base64.b64decode(decoded.json()["payloads"][0]["data"]).decode()
    assert '"name":"Mia Chen"' in data and "oat flat white" in data

    # The temporal CLI speaks the same protocol: it shows the case decrypted.
    proc = await asyncio.create_subprocess_exec(
        binary("temporal"), "workflow", "show", "--workflow-id", "case-T-3001", "--output",
        "json", "--address", api.client.service_client.config.target_host,
        "--codec-endpoint", str(api.http.base_url).rstrip("/") + "/codec",
        "--codec-auth", "Bearer auditor-token",
        env=temporal_env(api.client.service_client.config.target_host),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    first = json.loads(out)["events"][0]["workflowExecutionStartedEventAttributes"]
    (shown,) = first["input"]["payloads"]
    assert base64.b64decode(shown["metadata"]["encoding"]) == b"json/plain"
    assert "Mia Chen" in base64.b64decode(shown["data"]).decode()

    # A payload from keys this process does not hold: refused with the key id it names.
    (foreign,) = await data_converter(KeyRing.generate("k-elsewhere")).encode(["x"])
    wire = {"payloads": [json_format.MessageToDict(foreign)]}
    refused = await api.http.post("/codec/decode", json=wire, headers=api.auth("auditor"))
    assert refused.status_code == 400
    assert "key id 'k-elsewhere', which is not configured here" in refused.json()["detail"]
    bad = await api.http.post(
        "/codec/decode",
        json={"payloads": [{"data": "not base64!"}]},
        headers=api.auth("auditor"),
    )
    assert bad.status_code == 422


async def test_the_ui_origin_alone_passes_the_preflight_with_credentials(api: Api) -> None:
    preflight = {
        "Origin": UI,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-namespace",
    }
    response = await api.http.options("/codec/decode", headers=preflight)
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == UI
    assert response.headers["access-control-allow-credentials"] == "true"
    assert response.headers["access-control-allow-methods"] == "POST"
    allowed = response.headers["access-control-allow-headers"]
    assert {"content-type", "x-namespace", "authorization"} <= set(allowed.split(", "))

    evil = await api.http.options("/codec/decode", headers={**preflight, "Origin": "http://evil"})
    assert evil.status_code == 403
    assert "access-control-allow-origin" not in evil.headers

    # The real request carries the header for the UI's origin (and for no other).
    body = {"payloads": [plain("x")]}
    response = await api.http.post(
        "/codec/decode", json=body, headers={**api.auth("auditor"), "Origin": UI}
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == UI
    response = await api.http.post(
        "/codec/decode", json=body, headers={**api.auth("auditor"), "Origin": "http://evil"}
    )
    assert "access-control-allow-origin" not in response.headers
    # Other routes are not opened to the UI's origin.
    response = await api.http.get("/health", headers={"Origin": UI})
    assert "access-control-allow-origin" not in response.headers


async def test_a_person_signs_in_once_and_the_cookie_authenticates_the_ui(api: Api) -> None:
    page = await api.http.get("/codec/login")
    assert page.status_code == 200 and 'name="token"' in page.text

    for token, code in (("nope", 401), ("agent-token", 403)):
        response = await api.http.post("/codec/login", data={"token": token})
        assert response.status_code == code
        assert "set-cookie" not in response.headers
    response = await api.http.post("/codec/login", data={"token": "auditor-token"})
    assert response.status_code == 200 and "Signed in as auditor:ann" in response.text
    cookie = response.headers["set-cookie"]
    for part in ("makegood_codec=", "HttpOnly", "SameSite=strict", "Path=/codec", "Max-Age="):
        assert part.lower() in cookie.lower(), cookie

    # The UI sends no Authorization header: only the cookie (credentials: include).
    body = {"payloads": [plain("x")]}
    decoded = await api.http.post("/codec/decode", json=body, headers={"Origin": UI})
    assert decoded.status_code == 200, decoded.text
    # An auditor's sign-in does not let the UI encode.
    assert (await api.http.post("/codec/encode", json=body)).status_code == 403
    api.http.cookies.clear()
    assert (await api.http.post("/codec/decode", json=body)).status_code == 401
