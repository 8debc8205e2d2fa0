"""The pages' trust rules over real HTTP (dev server, worker, API): the session cookie, CSRF
on every form, where sign-in may send you, the role table in the pages, and the customer's
link refused when forged, with nothing of any case shown."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi.routing import APIRoute

from makegood.adapters.local.store import LocalStore
from makegood.api.auth import Tokens
from makegood.api.pages.install import ROUTERS as PAGES
from makegood.api.pages.session import COOKIE
from makegood.domain.receipts import blob_key
from makegood.domain.signed import Signer
from tests.api_harness import TOKEN_TABLE, Api, running_api
from tests.harness import ROOT, TICKETS

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
async def api(tmp_path: Path, store: LocalStore, task_queue: str) -> AsyncIterator[Api]:
    async with running_api(tmp_path, store, task_queue) as found:
        yield found


def csrf_of(page: httpx.Response) -> str:
    found = CSRF.search(page.text)
    assert found, page.text[:500]
    return found.group(1)


async def signed_in(api: Api, token: str, next_path: str = "/console") -> httpx.Response:
    api.http.cookies.clear()
    form = await api.http.get("/console/sign-in", params={"next": next_path})
    return await api.http.post(
        "/console/sign-in",
        data={"token": token, "csrf": csrf_of(form), "next": next_path},
    )


async def test_sign_in_makes_a_safe_session_that_only_this_console_can_use(api: Api) -> None:
    first = await api.http.get("/console/cases/case-T-1")
    assert first.status_code == 303
    assert first.headers["location"] == "/console/sign-in?next=/console/cases/case-T-1"

    wrong = await signed_in(api, "no-such-token")
    assert wrong.status_code == 401 and "That token is not known here" in wrong.text
    assert COOKIE not in wrong.cookies
    assert "default-src 'self'" in wrong.headers["content-security-policy"]

    # A sign-in form posted without the cookie it was issued with (a login CSRF) is refused.
    form = await api.http.get("/console/sign-in")
    api.http.cookies.clear()
    forged = await api.http.post(
        "/console/sign-in", data={"token": "agent-token", "csrf": csrf_of(form)}
    )
    assert forged.status_code == 401 and "had expired" in forged.text

    # Signing in never sends you to another site.
    ok = await signed_in(api, "agent-token", "//evil.example/console")
    assert ok.status_code == 303 and ok.headers["location"] == "/console"
    cookie = next(h for h in ok.headers.get_list("set-cookie") if h.startswith(COOKIE))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Max-Age=43200" in cookie and "Secure" not in cookie  # plain http on loopback
    assert "agent-token" not in cookie
    assert (await api.http.get("/console/open")).status_code == 200

    # The same claims signed with any other key are not a session.
    value = api.http.cookies[COOKIE]
    claims = Signer(api.settings.web_secret.get_secret_value(), "session").read(value, now=0)
    other = Signer("another-secret-of-at-least-32-chars!", "session")
    api.http.cookies.set(COOKIE, other.sign(claims, expires=int(claims["exp"])))
    assert (await api.http.get("/console/open")).status_code == 303

    # A token taken out of MAKEGOOD_API_TOKENS ends its sessions at once.
    api.http.cookies.set(COOKIE, value)
    assert (await api.http.get("/console/open")).status_code == 200
    assert api.app is not None
    remaining = {h: who for h, who in TOKEN_TABLE.items() if who != "agent:sam"}
    api.app.state.tokens = Tokens(remaining)
    try:
        assert (await api.http.get("/console/open")).status_code == 303
    finally:
        api.app.state.tokens = Tokens(TOKEN_TABLE)


async def test_every_console_page_and_form_needs_a_session(api: Api) -> None:
    routes = [
        (method, route.path.replace("{case_id}", "case-T-1"))
        for router in PAGES
        for route in router.routes
        if isinstance(route, APIRoute) and route.path.startswith("/console")
        for method in route.methods or ()
        if route.path != "/console/sign-in"
    ]
    assert len(routes) >= 14
    api.http.cookies.clear()
    for method, path in routes:
        found = await api.http.request(method, path, data={"csrf": "x"})
        if method == "GET":
            assert found.status_code == 303, path
            assert found.headers["location"].startswith("/console/sign-in?next="), path
        else:
            assert found.status_code == 401, path
            assert "Your session has ended: please sign in again." in found.text, path


async def test_every_form_needs_this_sessions_csrf_token(api: Api) -> None:
    await signed_in(api, "manager-token")
    page = await api.http.get("/console/open")
    mine = csrf_of(page)
    ticket = (TICKETS / "s5-wrong-drink.json").read_text()
    for bad in ("", "x.y", mine[:-3] + "abc"):
        refused = await api.http.post("/console/open", data={"ticket": ticket, "csrf": bad})
        assert refused.status_code == 403 and "nothing was done" in refused.text
    # Another person's token for their own session does not pass for this one.
    theirs = csrf_of(await (await _other_session(api, "agent-token")).get("/console/open"))
    refused = await api.http.post("/console/open", data={"ticket": ticket, "csrf": theirs})
    assert refused.status_code == 403
    assert [w async for w in api.client.list_workflows()] == []  # nothing was started

    opened = await api.http.post("/console/open", data={"ticket": ticket, "csrf": mine})
    assert opened.status_code == 303
    assert opened.headers["location"] == "/console/cases/case-T-3001?done=opened"


async def _other_session(api: Api, token: str) -> httpx.AsyncClient:
    other = httpx.AsyncClient(base_url=str(api.http.base_url))
    form = await other.get("/console/sign-in")
    await other.post("/console/sign-in", data={"token": token, "csrf": csrf_of(form)})
    return other


async def test_the_role_table_rules_the_pages_too(api: Api) -> None:
    await signed_in(api, "auditor-token")
    page = await api.http.get("/console/open")
    assert page.status_code == 403
    assert "cases are opened by an agent or a manager, not an auditor" in page.text
    trends = await api.http.get("/console/trends")
    assert trends.status_code == 200  # auditors read trends
    await signed_in(api, "agent-token")
    assert (await api.http.get("/console/trends")).status_code == 403


async def test_a_forged_customer_link_shows_nothing_and_leaks_nothing(api: Api) -> None:
    links = api.settings.links()
    for token, code in (("not-a-token", 404), ("a.b", 404)):
        page = await api.http.get(f"/c/{token}")
        assert page.status_code == code and "This link is not valid" in page.text
        assert page.headers["referrer-policy"] == "no-referrer"
        assert page.headers["cache-control"] == "no-store"
    # A genuine link to a case that does not exist: expired, and nothing about any case.
    url = links.url("case-T-404", "q-1", now=datetime.now(UTC))
    page = await api.http.get(url.removeprefix(links.base_url))
    assert page.status_code == 410 and "This link has expired" in page.text
    assert "case-T-404" not in page.text


async def test_a_receipt_from_the_customers_page_is_kept_only_for_a_claim_it_can_make(
    api: Api,
) -> None:
    ticket = json.loads((TICKETS / "s1-missing-car.json").read_text())
    assert (await api.post("/cases", ticket)).status_code == 201
    case = "case-T-1001"
    await api.until(case, lambda s: (s.get("question") or {}).get("id") == "locate-CAR-1-1", "q")
    links = api.settings.links()
    path = links.url(case, "locate-CAR-1-1", now=datetime.now(UTC)).removeprefix(links.base_url)
    pdf = (ROOT / "examples/receipts/taxi-1.pdf").read_bytes()
    receipts = api.settings.receipts()

    for amount in ("abc", "-5", ""):
        page = await api.http.post(
            f"{path}/receipt", data={"amount": amount}, files={"file": ("taxi.pdf", pdf)}
        )
        assert page.status_code == 422, amount
        assert "Please give the amount on the receipt, such as 18.50." in page.text
    text = await api.http.post(
        f"{path}/receipt", data={"amount": "9.00"}, files={"file": ("taxi.txt", b"not a receipt")}
    )
    assert text.status_code == 415 and "We could not take that file: not a receipt file" in (
        text.text
    )
    none = await api.http.post(f"{path}/receipt", data={"amount": "9.00"})
    assert none.status_code == 422 and "Please choose a photo or PDF" in none.text
    unchosen = await api.http.post(f"{path}/answer", data={})
    assert unchosen.status_code == 422 and "Please choose one of the answers" in unchosen.text
    assert not await receipts.exists(blob_key(hashlib.sha256(pdf).hexdigest()))
    assert (await api.status(case))["claims"] == []

    taken = await api.http.post(
        f"{path}/receipt", data={"amount": "18.50"}, files={"file": ("taxi.pdf", pdf)}
    )
    assert taken.status_code == 200 and "we have your receipt for 18.50 USD" in taken.text
    assert await receipts.exists(blob_key(hashlib.sha256(pdf).hexdigest()))
    # Staff see the file from the console; nobody else does.
    digest = hashlib.sha256(pdf).hexdigest()
    assert (await api.http.get(f"/console/receipts/{digest}")).status_code == 303
    await signed_in(api, "manager-token")
    shown = await api.http.get(f"/console/receipts/{digest}")
    assert shown.status_code == 200 and shown.content == pdf
    assert shown.headers["content-type"] == "application/pdf"
    assert "sandbox" in shown.headers["content-security-policy"]
    for bad in ("0" * 64, "../../etc/passwd", digest.upper()):
        assert (await api.http.get(f"/console/receipts/{bad}")).status_code == 404, bad
    claims = (await api.status(case))["claims"]
    assert [(c["amount"]["amount"], c["by"]) for c in claims] == [
        ("18.50", {"id": "M-42", "role": "customer"})
    ]
