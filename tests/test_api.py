"""The intake API over real HTTP against a worker and the dev server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.service import RPCError

from makegood.adapters.local.store import LocalStore
from makegood.api.app import create_app
from makegood.domain import contract, roles
from makegood.domain.case import SlaLevel, Stage
from makegood.settings import Settings
from tests.api_harness import (
    PAYMENTS_SECRET,
    TELEPHONY_SECRET,
    TOKEN_TABLE,
    Api,
    guarded_routes,
    running_api,
)
from tests.harness import TICKETS


def raw(name: str) -> dict[str, Any]:
    return json.loads((TICKETS / name).read_text())  # type: ignore[no-any-return]


@pytest.fixture
async def api(tmp_path: Path, store: LocalStore, task_queue: str) -> AsyncIterator[Api]:
    async with running_api(tmp_path, store, task_queue) as running:
        yield running


async def nothing_started(api: Api, case_id: str) -> bool:
    try:
        await api.client.get_workflow_handle(case_id).describe()
    except RPCError:
        return True
    return False


def test_list_filters_offer_exactly_the_domain_stages_and_sla_levels() -> None:
    doc = create_app(Settings(api_tokens=TOKEN_TABLE)).openapi()
    schemas = doc["components"]["schemas"]
    params = {p["name"]: p["schema"] for p in doc["paths"]["/cases"]["get"]["parameters"]}

    def values(param: str) -> list[str]:
        ref = next(s["$ref"] for s in params[param]["anyOf"] if "$ref" in s)
        return schemas[ref.rsplit("/", 1)[-1]]["enum"]  # type: ignore[no-any-return]

    assert values("stage") == [s.value for s in Stage]
    assert values("sla") == [level.value for level in SlaLevel]


async def test_tickets_open_cases_and_duplicates_return_the_existing_one(api: Api) -> None:
    first = await api.post("/cases", raw("s5-wrong-drink.json"))
    assert first.status_code == 201, first.text
    assert first.json()["case_id"] == "case-T-3001" and first.json()["created"] is True
    again = await api.post("/cases", raw("s5-wrong-drink.json"))
    assert again.status_code == 200 and again.json()["created"] is False
    assert again.json()["run_id"] == first.json()["run_id"]
    status = await api.until("case-T-3001", lambda s: s["stage"] == "closed", "closed")
    assert status["resolution"] == "resolved"
    listed = await api.get("/cases", role="auditor", stage="closed")
    assert [c["case_id"] for c in listed.json()] == ["case-T-3001"]
    assert [c["sla"] for c in listed.json()] == ["ok"]
    assert (await api.get("/cases", stage="closed", sla="breached")).json() == []
    unknown = await api.get("/cases", stage="shipped")
    assert unknown.status_code == 422
    [problem] = unknown.json()["problems"]
    assert problem["field"] == "query.stage" and "'follow_up'" in problem["reason"], problem


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ('{"id": "T-1", "customer": ', "(body)", "JSON decode error"),
        ({**raw("s5-wrong-drink.json"), "id": "T 1"}, "id", "must be 1-64 letters"),
        (
            {
                **raw("s5-wrong-drink.json"),
                "incident": {**raw("s5-wrong-drink.json")["incident"], "kind": "cold_soup"},
            },
            "incident.kind",
            "unknown value 'cold_soup'",
        ),
        (
            {
                **raw("s5-wrong-drink.json"),
                "incident": {
                    **raw("s5-wrong-drink.json")["incident"],
                    "paid": {"amount": "-1", "currency": "USD"},
                },
            },
            "incident.paid.amount",
            "must not be negative",
        ),
        (
            {**raw("s5-wrong-drink.json"), "customer": ["not", "an", "object"]},
            "customer",
            "valid dictionary",
        ),
    ],
)
async def test_bad_tickets_get_a_machine_readable_list_and_start_nothing(
    api: Api,
    body: Any,
    field: str,
    reason: str,
) -> None:
    content = body if isinstance(body, str) else json.dumps(body)
    response = await api.http.post(
        "/cases", content=content, headers={**api.auth("agent"), "content-type": "application/json"}
    )
    assert response.status_code == 422
    problems = response.json()["problems"]
    assert any(p["field"] == field and reason in p["reason"] for p in problems), problems
    assert await nothing_started(api, "case-T-3001")


async def test_oversized_bodies_are_refused(api: Api) -> None:
    body = raw("s5-wrong-drink.json")
    body["incident"]["summary"] = "x" * 20_000
    response = await api.post("/cases", body)
    assert response.status_code == 413
    assert "larger than 16384 bytes" in response.json()["detail"]
    assert await nothing_started(api, "case-T-3001")


async def test_tokens_and_roles_decide_who_may_do_what(api: Api) -> None:
    body = raw("s1-missing-car.json")
    assert (await api.post("/cases", body, role=None)).status_code == 401
    unknown = await api.http.post("/cases", json=body, headers={"Authorization": "Bearer stolen"})
    assert unknown.status_code == 401
    auditor = await api.post("/cases", body, role="auditor")
    assert auditor.status_code == 403
    assert auditor.json()["detail"] == "cases are opened by an agent or a manager, not an auditor"
    assert await nothing_started(api, "case-T-1001")

    assert (await api.post("/cases", body)).status_code == 201
    await api.until("case-T-1001", lambda s: s["question"] is not None, "question")
    for qid in ("locate-CAR-1-1", "locate-CAR-1-2"):
        await api.until("case-T-1001", lambda s, q=qid: (s["question"] or {}).get("id") == q, qid)
        ok = await api.post(
            "/cases/case-T-1001/answers", {"question_id": qid, "answer": "not_found"}
        )
        assert ok.status_code == 200, ok.text
    await api.until(
        "case-T-1001", lambda s: (s["question"] or {}).get("id") == "pickup-1", "pickup"
    )
    await api.post("/cases/case-T-1001/answers", {"question_id": "pickup-1", "answer": "picked_up"})
    await api.until("case-T-1001", lambda s: (s["question"] or {}).get("id") == "claims", "claims")
    claim = await api.post(
        "/cases/case-T-1001/claims",
        {
            "claim_id": "taxi-1",
            "description": "Taxi",
            "amount": {"amount": "18.50", "currency": "USD"},
        },
    )
    assert claim.status_code == 200
    await api.post("/cases/case-T-1001/answers", {"question_id": "claims", "answer": "done"})
    await api.until("case-T-1001", lambda s: s["approval"] is not None, "approval")
    # The 21.00 within the limit is paid at once and the customer told: then the case waits.
    await api.until(
        "case-T-1001",
        lambda s: any("paid in part" in e["detail"] for e in s["events"] if e["kind"] == "message"),
        "the customer told what is paid and what waits",
    )

    before = await api.status("case-T-1001")
    by_agent = await api.post(
        "/cases/case-T-1001/approvals", {"request_id": "compensation", "approved": True}
    )
    assert by_agent.status_code == 403
    assert (
        by_agent.json()["detail"]
        == "approval decisions come from a manager or an ops lead, not an agent"
    )
    wrong = await api.post(
        "/cases/case-T-1001/approvals", {"request_id": "rebook-9", "approved": True}, role="manager"
    )
    assert wrong.status_code == 409
    assert wrong.json()["detail"] == "the pending approval is 'compensation', not 'rebook-9'"
    # A decline is a person's decision with a note: without one the case refuses it (409)...
    bare = await api.post(
        "/cases/case-T-1001/approvals",
        {"request_id": "compensation", "approved": False},
        role="manager",
    )
    assert bare.status_code == 409
    assert bare.json()["detail"].startswith("declining compensation needs a note saying why")
    # ... and an empty one is not a note at all: the body is invalid (422).
    empty = await api.post(
        "/cases/case-T-1001/approvals",
        {"request_id": "compensation", "approved": False, "note": ""},
        role="manager",
    )
    assert empty.status_code == 422
    assert (await api.status("case-T-1001"))["events"] == before["events"]

    approved = await api.post(
        "/cases/case-T-1001/approvals",
        {"request_id": "compensation", "approved": True},
        role="manager",
    )
    assert approved.status_code == 200
    status = await api.until("case-T-1001", lambda s: s["stage"] == "follow_up", "follow-up")
    decision = [e for e in status["events"] if e["kind"] == "approval"]
    assert decision[-1]["by"] == "manager:mia"
    claims = [e for e in status["events"] if e["kind"] == "claim"]
    assert claims[0]["by"] == "agent:sam"

    timeline = await api.get("/cases/case-T-1001/timeline", role="auditor", format="md")
    assert timeline.status_code == 200 and "| payment | refund of 21.00 USD" in timeline.text
    assert (await api.get("/cases/case-T-1001/timeline", role="agent")).status_code == 403
    assert (await api.get("/cases/case-nope", role="agent")).status_code == 404


def zendesk_body(ticket_id: int = 35436) -> dict[str, Any]:
    return {
        "ticket": {
            "id": ticket_id,
            "subject": "Wrong drink",
            "description": "Oat flat white came as a latte.",
            "created_at": "",
            "requester": {"id": 991, "name": "Mia Chen", "email": "mia@example.com", "phone": ""},
            "custom_fields": {
                "incident_kind": "wrong_order",
                "reference": "ORD-77",
                "paid_amount": "4.80",
                "currency": "USD",
                "item": "oat-flat-white",
                "location": "",
                "asset": "",
            },
        }
    }


async def test_the_zendesk_webhook_is_verified_mapped_and_replay_safe(api: Api) -> None:
    created = await api.zendesk(zendesk_body())
    assert created.status_code == 201, created.text
    assert created.json()["case_id"] == "case-ZD-35436"
    status = await api.until("case-ZD-35436", lambda s: s["stage"] == "closed", "closed")
    assert status["customer_id"] == "zd-991" and status["kind"] == "wrong_order"

    stale = await api.zendesk(zendesk_body(2), at=datetime.now(UTC) - timedelta(minutes=10))
    assert stale.status_code == 401 and "outside the tolerance" in stale.json()["detail"]
    forged = await api.zendesk(zendesk_body(3), secret="guessed")
    assert forged.status_code == 401
    for ticket_id in (2, 3):
        assert await nothing_started(api, f"case-ZD-{ticket_id}")
    unsigned = await api.http.post("/webhooks/zendesk", json=zendesk_body(4))
    assert unsigned.status_code == 401

    incomplete = zendesk_body(5)
    incomplete["ticket"]["custom_fields"]["incident_kind"] = ""
    refused = await api.zendesk(incomplete)
    assert refused.status_code == 422
    assert any(p["field"] == "incident.kind" for p in refused.json()["problems"])


async def test_telephony_callbacks_are_signed_deduplicated_and_routed(api: Api) -> None:
    body = raw("s6-support-call.json")
    assert (await api.post("/cases", body)).status_code == 201
    status = await api.until(
        "case-T-6001", lambda s: (s["callback"] or {}).get("state") == "waiting", "call booked"
    )
    call_id = status["callback"]["attempts"][0]["call_id"]
    event = {"case_id": "case-T-6001", "call_id": call_id, "status": "completed"}

    forged = await api.signed("/callbacks/telephony", event, secret="whsec_" + "QUJD" * 8)
    assert forged.status_code == 401
    # Each provider has its own secret: the payment provider cannot end a call.
    as_payments = await api.signed("/callbacks/telephony", event, secret=PAYMENTS_SECRET)
    assert as_payments.status_code == 401, as_payments.text
    stale = await api.signed(
        "/callbacks/telephony", event, at=datetime.now(UTC) - timedelta(minutes=10)
    )
    assert stale.status_code == 401
    unknown = await api.signed("/callbacks/telephony", {**event, "case_id": "case-nope"})
    assert unknown.status_code == 404

    delivered = await api.signed("/callbacks/telephony", event, msg_id="msg_call_1")
    assert delivered.status_code == 202 and delivered.json()["delivered"] is True
    replayed = await api.signed("/callbacks/telephony", event, msg_id="msg_call_1")
    assert replayed.status_code == 409
    status = await api.until("case-T-6001", lambda s: s["stage"] == "follow_up", "follow-up")
    assert status["callback"]["state"] == "completed"
    late = await api.signed("/callbacks/telephony", {**event, "status": "dropped"})
    assert late.status_code == 202 and late.json()["delivered"] is False


async def test_a_payment_that_fails_to_settle_escalates_once(api: Api) -> None:
    assert (await api.post("/cases", raw("s4-wrong-size.json"))).status_code == 201
    await api.until(
        "case-T-2001",
        lambda s: (s["question"] or {}).get("id") == "substitute",
        "substitute question",
    )
    await api.post(
        "/cases/case-T-2001/answers",
        {"question_id": "substitute", "answer": "substitute", "value": "SHORTS-NAVY-M"},
    )
    await api.until("case-T-2001", lambda s: s["stage"] == "follow_up", "follow-up")
    failed = {
        "type": "payment.failed",
        "idempotency_key": "case-T-2001:coupon",
        "reason": "issuer declined the credit",
    }
    # A telephony provider cannot forge payment events: its secret is not the payment one's.
    forged = await api.signed(
        "/callbacks/payments", failed, msg_id="tel_1", secret=TELEPHONY_SECRET
    )
    assert forged.status_code == 401 and "signature rejected" in forged.json()["detail"]
    first = await api.signed("/callbacks/payments", failed, msg_id="pay_evt_1")
    assert first.status_code == 202, first.text
    assert (await api.signed("/callbacks/payments", failed, msg_id="pay_evt_1")).status_code == 409
    late = await api.signed(
        "/callbacks/payments", {**failed, "type": "payment.settled", "reason": None}
    )
    assert late.status_code == 202
    status = await api.until("case-T-2001", lambda s: s["escalations"], "escalation")
    coupon = next(i for i in status["compensation"] if i["step"] == "coupon")
    assert coupon["state"] == "failed" and coupon["settlement"] == "failed"
    assert [e["reason"] for e in status["escalations"]] == [
        "coupon for your next order (10.00 USD) did not settle: issuer declined the credit"
    ]
    unknown = await api.signed(
        "/callbacks/payments", {**failed, "idempotency_key": "case-nope:coupon"}
    )
    assert unknown.status_code == 404


# Every guarded request, with a body the route accepts, against a case that does not exist:
# a caller the role table allows gets past the guard to the case (404), or the request itself
# (422 for an empty ticket, 200 for the list); anyone else gets 403 with the table's reason.
GUARDED: list[tuple[str, str, str, Any, int]] = [
    (roles.OPEN, "POST", "/cases", {}, 422),
    (roles.LIST, "GET", "/cases", None, 200),
    (roles.STATUS, "GET", "/cases/case-nope", None, 404),
    (roles.TIMELINE, "GET", "/cases/case-nope/timeline", None, 404),
    (roles.TRENDS, "GET", "/trends", None, 200),
    (contract.ANSWER, "POST", "/cases/case-nope/answers", {"question_id": "q", "answer": "a"}, 404),
    (
        contract.SUBMIT_CLAIM,
        "POST",
        "/cases/case-nope/claims",
        {"claim_id": "c", "description": "Taxi", "amount": {"amount": "1", "currency": "USD"}},
        404,
    ),
    # A receipt upload's body is the file: JSON is no receipt (415), whoever sends it.
    (contract.SUBMIT_CLAIM, "POST", "/cases/case-nope/receipts", "not a receipt", 415),
    (
        contract.DECIDE,
        "POST",
        "/cases/case-nope/approvals",
        {"request_id": "r", "approved": 1},
        404,
    ),
    (contract.ADD_NOTE, "POST", "/cases/case-nope/notes", {"text": "hello"}, 404),
    (contract.ASSIGN, "POST", "/cases/case-nope/assign", {"to": "agent:sam"}, 404),
    (contract.ESCALATE, "POST", "/cases/case-nope/escalate", {"reason": "why"}, 404),
    (contract.CANCEL, "POST", "/cases/case-nope/cancel", {"reason": "why"}, 404),
    (roles.DECODE, "POST", "/codec/decode", {"payloads": []}, 200),
    (roles.ENCODE, "POST", "/codec/encode", {"payloads": []}, 200),
]


def test_the_matrix_covers_every_guarded_route() -> None:
    assert sorted({a for a, *_ in GUARDED}) == sorted(set(roles.RULES) - {roles.OWN})
    assert sorted((m, p) for _, m, p, *_ in GUARDED) == sorted(
        (method, path.replace("{case_id}", "case-nope"))
        for method, path, _ in guarded_routes(create_app(Settings(api_tokens=TOKEN_TABLE)))
    )


async def test_every_role_gets_exactly_what_the_role_table_allows(api: Api) -> None:
    for action, method, path, body, passed in GUARDED:
        for role in roles.TOKEN_ROLES:
            response = await api.http.request(method, path, json=body, headers=api.auth(role))
            where = f"{role} {method} {path}: {response.status_code} {response.text}"
            if roles.may(role, action):
                assert response.status_code == passed, where
            else:
                assert response.status_code == 403, where
                assert response.json() == {"detail": roles.refusal(role, action)}, where
    assert await nothing_started(api, "case-nope")

    # Who may own a case is the table's too: anyone else is refused with its reason.
    for owner in ("auditor:ann", "customer:M-42", "boss:x"):
        response = await api.post("/cases/case-nope/assign", {"to": owner}, role="manager")
        assert response.status_code == 422, response.text
        [problem] = response.json()["problems"]
        named = owner.partition(":")[0]
        expected = roles.refusal(named, roles.OWN) if named in roles.ROLES else "expected agent:ID"
        assert problem["field"] == "to" and problem["reason"].startswith(expected), problem


async def test_a_manager_answers_and_claims_on_the_customers_behalf(api: Api) -> None:
    assert (await api.post("/cases", raw("s1-missing-car.json"))).status_code == 201
    for qid, answer in (
        ("locate-CAR-1-1", "not_found"),
        ("locate-CAR-1-2", "not_found"),
        ("pickup-1", "picked_up"),
    ):
        await api.until("case-T-1001", lambda s, q=qid: (s["question"] or {}).get("id") == q, qid)
        sent = await api.post(
            "/cases/case-T-1001/answers", {"question_id": qid, "answer": answer}, role="manager"
        )
        assert sent.status_code == 200, sent.text
    await api.until("case-T-1001", lambda s: (s["question"] or {}).get("id") == "claims", "claims")
    claim = await api.post(
        "/cases/case-T-1001/claims",
        {
            "claim_id": "taxi-1",
            "description": "Taxi",
            "amount": {"amount": "18.50", "currency": "USD"},
        },
        role="manager",
    )
    assert claim.status_code == 200, claim.text
    events = (await api.status("case-T-1001"))["events"]
    assert [e["by"] for e in events if e["kind"] in ("answer", "claim")] == ["manager:mia"] * 4
