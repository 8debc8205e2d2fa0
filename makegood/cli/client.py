"""The CLI's client of the API: one request per command, its answer turned into an exit status.

| the API answers | the CLI says | exit |
|---|---|---|
| 2xx | the command's output | 0 |
| 401 | the token (or a provider's signature) was not accepted | 2 |
| 403 | the role table's reason for this token | 1 |
| 404, 409 | no such case; the case's reason for refusing | 1 |
| 413, 415, 422 | one `field: reason` line per problem | 2 |
| 5xx, or no answer | the API (or Temporal behind it) could not answer, with the URL | 3 |
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any
from urllib.parse import quote

import httpx

from makegood.cli.base import (
    Failed,
    Invalid,
    NoCredentials,
    NotAllowed,
    NotFound,
    Refused,
    Unreachable,
)
from makegood.cli.config import TOKEN_VAR, ApiAccess


def _agent() -> str:
    try:
        return f"makegood-cli/{version('makegood')}"
    except PackageNotFoundError:  # pragma: no cover - run from a checkout without installing
        return "makegood-cli"


def case_path(case_id: str, *rest: str) -> str:
    return "/".join(["/cases", quote(case_id, safe=""), *rest])


class Api:
    """`async with Api(access) as api: await api.post(...)`: JSON in, JSON out, or a Failed."""

    def __init__(self, access: ApiAccess, *, timeout_s: float = 30.0) -> None:
        self.access = access
        self._timeout = timeout_s
        self._http: httpx.AsyncClient | None = None

    async def __aenter__(self) -> Api:
        self._http = httpx.AsyncClient(
            base_url=self.access.url, timeout=self._timeout, headers={"user-agent": _agent()}
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._http is not None:
            await self._http.aclose()

    @property
    def url(self) -> str:
        return self.access.url

    async def get(self, path: str, **params: Any) -> Any:
        query = {k: v for k, v in params.items() if v is not None}
        return await self._bearer("GET", path, params=query)

    async def post(self, path: str, body: Any) -> Any:
        return await self._bearer("POST", path, json=body)

    async def upload(self, path: str, data: bytes) -> Any:
        """A file as the raw body (a receipt): the API tells its type by its first bytes."""
        return await self._bearer(
            "POST", path, content=data, headers={"content-type": "application/octet-stream"}
        )

    async def signed(self, path: str, body: Any, *, secret: str, delivery_id: str) -> Any:
        """A provider's delivery, signed the Standard Webhooks way instead of with a token."""
        from standardwebhooks import Webhook  # only call-status needs it

        raw = json.dumps(body)
        now = datetime.now(UTC)
        try:
            signature = Webhook(secret).sign(delivery_id, now, raw)
        except Exception as err:  # empty, or not base64 after `whsec_`
            raise NoCredentials(
                "MAKEGOOD_TELEPHONY_WEBHOOK_SECRET is not a Standard Webhooks secret (whsec_ and "
                f"base64): {err}; nothing was sent"
            ) from None
        headers = {
            "content-type": "application/json",
            "webhook-id": delivery_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signature,
        }
        response = await self._send("POST", path, content=raw, headers=headers)
        if response.status_code == 401:
            raise NoCredentials(
                f"the API at {self.url} did not accept the signature ({_detail(response)}); "
                "it is made with MAKEGOOD_TELEPHONY_WEBHOOK_SECRET, which must be the API's"
            )
        if response.status_code == 409:
            raise Failed(f"the API at {self.url} refused it: {_detail(response)}")
        return self._result(response)

    async def _bearer(
        self, method: str, path: str, *, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> Any:
        if not self.access.token:
            raise NoCredentials(
                f"no API token for {self.url}: set {TOKEN_VAR}, or run `makegood login` "
                f"(which saves it in {self.access.config_file}); nothing was sent"
            )
        headers = {**(headers or {}), "authorization": f"Bearer {self.access.token}"}
        response = await self._send(method, path, headers=headers, **kwargs)
        if response.status_code == 401:
            raise NoCredentials(
                f"the API at {self.url} did not accept the token from "
                f"{self.access.token_from} ({_detail(response)}); check it, or run "
                "`makegood login`"
            )
        if response.status_code == 403:
            raise NotAllowed(
                f"not allowed with the token from {self.access.token_from}: {_detail(response)}"
            )
        return self._result(response)

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        assert self._http is not None, "use Api as an async context manager"
        try:
            return await self._http.request(method, path, **kwargs)
        except httpx.TransportError as err:
            reason = str(err) or type(err).__name__
            raise Unreachable(
                f"cannot reach the Makegood API at {self.url} ({reason}); "
                "is `make run` (or `makegood api`) up?"
            ) from None

    def _result(self, response: httpx.Response) -> Any:
        code = response.status_code
        if response.is_success:
            return response.json()
        if code == 404:
            raise NotFound(_detail(response))
        if code == 409:
            raise Refused(_detail(response))
        if code == 422:
            raise Invalid(_problems(response))
        if code == 413:
            raise Invalid([f"(body): {_detail(response)}"])
        if code == 415:
            raise Invalid([f"(file): {_detail(response)}"])
        if code >= 500:
            raise Unreachable(
                f"the Makegood API at {self.url} could not answer: {code} {_detail(response)}"
            )
        raise Failed(f"the Makegood API at {self.url} answered {code}: {_detail(response)}")


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _detail(response: httpx.Response) -> str:
    data = _json(response)
    detail = data.get("detail") if isinstance(data, dict) else None
    if isinstance(detail, str):
        return detail
    text = response.text.strip()[:200]
    return text or response.reason_phrase


def _problems(response: httpx.Response) -> list[str]:
    data = _json(response)
    problems = data.get("problems") if isinstance(data, dict) else None
    if not isinstance(problems, list) or not problems:
        return [f"(body): {_detail(response)}"]
    return [f"{p.get('field', '?')}: {p.get('reason', '?')}" for p in problems]
