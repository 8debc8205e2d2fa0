"""Signed tokens and customers' links: what a forger, a tamperer or a late visitor gets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from makegood.credentials import DEV_WEB_SECRET, new_webhook_secret
from makegood.domain import plain, steps
from makegood.domain.links import PATH, Links
from makegood.domain.signed import BadToken, Signer
from makegood.secure import listeners, problems
from makegood.settings import Settings

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
SECRET = new_webhook_secret()


def token_of(url: str) -> str:
    return url.rpartition(PATH)[2]


def test_a_link_opens_its_case_and_question_until_it_expires() -> None:
    links = Links(SECRET, "https://care.example.com/", timedelta(days=2))
    url = links.url("case-T-1001", "pickup-1", now=NOW)
    assert url.startswith("https://care.example.com/c/")
    found = links.read(token_of(url), now=NOW + timedelta(days=1))
    assert (found.case_id, found.question_id) == ("case-T-1001", "pickup-1")
    with pytest.raises(BadToken, match="expired"):
        links.read(token_of(url), now=NOW + timedelta(days=2))


def test_forged_altered_and_foreign_tokens_are_refused() -> None:
    links = Links(SECRET, "http://127.0.0.1:8080")
    token = token_of(links.url("case-T-1001", "pickup-1", now=NOW))
    body, _, mac = token.partition(".")
    # Another case's id in the claims, under the original signature.
    other = token_of(links.url("case-T-9999", "pickup-1", now=NOW)).partition(".")[0]
    for bad in (
        f"{other}.{mac}",
        f"{body}.{mac[:-2]}AA",
        f"{body}.",
        "",
        "x" * 5000,
        "a.b.c",
        token_of(Links(new_webhook_secret(), "http://x").url("case-T-1001", "q", now=NOW)),
    ):
        with pytest.raises(BadToken, match="not a valid link"):
            links.read(bad, now=NOW)
    # A session cookie is signed for another use: it never passes for a link.
    session = Signer(SECRET, "session").sign({"c": "case-T-1001", "q": "q"}, expires=2**40)
    with pytest.raises(BadToken):
        links.read(session, now=NOW)


def test_the_step_of_a_message_tells_which_question_it_asks() -> None:
    assert steps.asked_question("ask:pickup-1:email") == "pickup-1"
    assert steps.asked_question("ask:pickup-1:reminder-2:sms") == "pickup-1"
    assert steps.asked_question(steps.on_channel(steps.ask("claims", 1), "app")) == "claims"
    for other in ("ack:email", "confirm:sms", "ask", "ask:", "approval:rebook-2", "remedy:app"):
        assert steps.asked_question(other) is None


def test_choices_read_as_words() -> None:
    assert plain.choice("not_found") == "No, I can't find it"
    assert plain.choice("call-me_back") == "Call me back"
    assert plain.with_link("Did you find it?", "http://x/c/t").endswith("here:\nhttp://x/c/t")


def test_the_web_secret_must_be_long_and_private_off_loopback() -> None:
    short = Settings(web_secret="too-short")
    assert any("MAKEGOOD_WEB_SECRET: too short" in p for p in problems(short, [], api=False))
    exposed = Settings(api_host="0.0.0.0", api_tokens={})
    found = problems(exposed, listeners(exposed, None, api=True, embedded=False), api=True)
    assert any(p.startswith("MAKEGOOD_WEB_SECRET is not set") for p in found)
    assert not any(DEV_WEB_SECRET in p for p in found)
    mine = Settings(api_host="0.0.0.0", web_secret=SECRET)
    found = problems(mine, listeners(mine, None, api=True, embedded=False), api=True)
    assert not any("MAKEGOOD_WEB_SECRET" in p for p in found)
    assert not any("MAKEGOOD_WEB_SECRET" in p for p in problems(Settings(), [], api=True))
