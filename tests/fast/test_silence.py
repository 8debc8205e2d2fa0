"""Silence is never an answer (issue 12, item 2), against the fakes on the time-skipping
server: a question unanswered on the preferred channel is asked on another channel, then a
call-back or ops (the playbook's `on_silence`), and the outcome records "unconfirmed"; one test
per question whose answer the case interprets (locate, pickup, substitute, follow-up) and the
claims window, which simply closes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from makegood.audit.timeline import timeline
from makegood.cli.render import render_status
from makegood.domain import wording
from makegood.domain.case import CaseStatus
from makegood.privacy.codec import decode_history
from makegood.registry import build_replayer
from tests.fakes import World
from tests.fast.driver import Case, Runner, book, make_ticket
from tests.harness import AGENT

pytestmark = pytest.mark.fast

# Nobody decides the compensation's approval either in these cases: these playbooks decline
# it after its chain (the default keeps waiting for a person, and the case would never close).
ESCALATE = book("car_missing", on_silence="escalate", on_no_decision="decline")
NOBODY_DECIDES = book("car_missing", on_no_decision="decline")
PICKUP = "Did you find CAR-2 at Main St 1?"


def reasons(status: CaseStatus) -> list[str]:
    return [e.reason for e in status.escalations]


def unanswered(status: CaseStatus) -> list[str]:
    """The escalations about unanswered questions (the waits also breach SLA clocks)."""
    return [r for r in reasons(status) if r.startswith("no answer to")]


def events(status: CaseStatus, kind: str) -> list[str]:
    return [e.detail for e in status.events if e.kind == kind]


async def silent(case: Case, qid: str, channel: str, wait: timedelta) -> None:
    """The question goes out on `channel` and nobody answers it within `wait`."""
    step = f"ask:{qid}:{channel}"
    await case.eventually(lambda: step in case.to_customer(), f"asked {qid} by {channel}")
    # The timer is set in the same workflow task that records the message as sent.
    await case.until(
        lambda s: any(e.kind == "message" and e.detail.startswith(channel) for e in s.events[-3:]),
        f"{qid} sent by {channel}",
    )
    await case.skip(wait + timedelta(minutes=1))


async def silent_at_pickup(case: Case) -> None:
    """Re-booked, then nobody answers "did you find the car?" by email, nor again by sms."""
    await to_pickup(case)
    await silent(case, "pickup-1", "email", timedelta(minutes=30))
    await silent(case, "pickup-1", "sms", timedelta(minutes=30))


async def replays(case: Case) -> None:
    """The new paths are deterministic: the case's history and its call-back's replay."""
    histories = [await case.handle.fetch_history(), await case.callback.fetch_history()]
    for history in histories:
        replayer = build_replayer(data_converter=case.env.client.data_converter)
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        assert result.replay_failure is None, result.replay_failure


async def to_pickup(case: Case) -> None:
    for n in (1, 2):
        await case.answer(f"locate-CAR-1-{n}", "not_found")
    await case.question("pickup-1")


async def test_silence_on_the_preferred_channel_asks_again_on_another_and_takes_that_answer(
    solo: Runner,
) -> None:
    case = await solo.open("s1-missing-car.json", ESCALATE)
    await to_pickup(case)
    await silent(case, "pickup-1", "email", timedelta(minutes=30))
    status = await case.question("pickup-1")

    # The same question, word for word, on the member's phone (the ledger of the sms provider).
    (first,) = [e.request for e in case.effects("send_message") if e.step == "ask:pickup-1:email"]
    (again,) = [e.request for e in case.effects("send_message") if e.step == "ask:pickup-1:sms"]
    assert (again.channel, again.to) == ("sms", "+15550100042")
    assert again.subject == wording.SECOND_CHANNEL_SUBJECT and again.body == first.body
    assert events(status, "second_channel") == ["pickup-1: no answer by email, asking by sms"]
    assert status.question is not None and "unconfirmed" in status.question.on_timeout
    assert not status.escalations

    await case.answer("pickup-1", "picked_up")  # the answer to the second attempt is taken
    status = await case.until(lambda s: s.stage == "compensate", "compensation")
    assert [(b.vehicle, b.status) for b in status.bookings][-1] == ("CAR-2", "in_use")
    assert status.unconfirmed == [] and not status.escalations
    assert case.steps("schedule_call") == []


async def test_silence_on_both_channels_escalates_naming_the_question(solo: Runner) -> None:
    case = await solo.open("s1-missing-car.json", ESCALATE)
    await silent_at_pickup(case)
    status = await case.question("claims")

    assert unanswered(status) == [
        f"no answer to pickup-1 ({PICKUP!r}), asked by email and sms: nothing is assumed; "
        "CAR-2 stays booked for the member, not counted as fixed; a person must ask the customer"
    ]
    assert status.unconfirmed == [f"pickup-1: {PICKUP}"]
    assert [(b.vehicle, b.status) for b in status.bookings] == [
        ("CAR-1", "released"),
        ("CAR-2", "unconfirmed"),
    ]
    assert case.steps("schedule_call") == []  # the playbook says escalate, not call
    outcome = await case.result()
    assert (outcome.remedy_succeeded, outcome.remedy) == (False, "unconfirmed")
    assert outcome.unconfirmed[0] == f"pickup-1: {PICKUP}"


async def test_silence_everywhere_calls_back_and_never_counts_as_success(
    solo: Runner,
) -> None:
    """The car playbook calls back; nobody ever answers anything: every question the case
    interprets ends unconfirmed, none as a yes; the claims window just closes."""
    case = await solo.open("s1-missing-car.json", NOBODY_DECIDES)
    await to_pickup(case)
    outcome = await case.result()  # time is skipped through every wait
    status = await case.status()

    told = case.to_customer()
    assert told.index("ask:pickup-1:email") < told.index("ask:pickup-1:sms")
    # Then a call-back about the question, booked in writing and dialled three times.
    assert told.index("ask:pickup-1:sms") < told.index("callback:call-booked:email")
    (booked,) = [e.request for e in case.effects("send_message") if "call-booked" in e.step]
    assert PICKUP in booked.body
    assert booked.subject == "We will call you"  # ours, not a support call they booked
    # Calls the customer never asked for: no "support call", no personal call promised.
    texts = [e.request for e in case.effects("send_message") if e.key and ":callback:" in e.key]
    assert texts and all("support call" not in t.subject for t in texts)
    (gave_up,) = [t for t in texts if "handed-off" in t.step]
    assert "we will not call again about this" in gave_up.body
    assert "call you personally" not in gave_up.body
    assert case.steps("schedule_call") == ["callback:call:1", "callback:call:2", "callback:call:3"]
    pickup = next(r for r in reasons(status) if r.startswith("no answer to pickup-1"))
    assert "asked by email and sms; the call-back reached nobody after 3 call(s)" in pickup

    # The claims window closes without a second channel or an escalation: it is no question.
    assert "ask:claims:sms" not in told
    assert not any(r.startswith("no answer to claims") for r in reasons(status))
    # The follow-up: second channel, and the case's one call-back is used up, so ops.
    assert "ask:follow-up-1:sms" in told and told[-1] == "closed-unanswered:email"
    follow_up = next(r for r in reasons(status) if r.startswith("no answer to follow-up-1"))
    assert "the case's call-back was already used" in follow_up

    assert [u.partition(":")[0] for u in status.unconfirmed] == ["pickup-1", "follow-up-1"]
    assert (outcome.resolution, outcome.remedy, outcome.satisfaction) == (
        "unreachable",
        "unconfirmed",
        "unconfirmed",
    )
    assert outcome.remedy_succeeded is False and outcome.unconfirmed == status.unconfirmed
    # `status` and the audit timeline say so.
    shown = render_status(status)
    assert "UNCONFIRMED (nobody answered on any channel; nothing was assumed):" in shown
    assert f"  pickup-1: {PICKUP}" in shown
    history = await decode_history(
        await case.handle.fetch_history(), case.env.client.data_converter
    )
    (closed,) = [line for line in timeline([history]) if line.kind == "closed"]
    assert "remedy unconfirmed, satisfaction unconfirmed" in closed.text
    assert closed.text.endswith("unconfirmed, nobody answered: pickup-1, follow-up-1")
    await replays(case)


async def test_an_answer_given_on_the_call_back_is_taken_and_the_calls_stop(
    solo: Runner,
) -> None:
    case = await solo.open("s1-missing-car.json")
    await silent_at_pickup(case)
    first = await case.booked_call()
    await case.report_call(first, "completed", "tel-1")
    await case.until(
        lambda s: s.callback is not None and s.callback.state == "completed", "call completed"
    )
    # The agent on the call records the member's answer, as for any answer.
    await case.answer("pickup-1", "picked_up", by=AGENT)
    status = await case.until(lambda s: s.stage == "compensate", "compensation")
    assert [(b.vehicle, b.status) for b in status.bookings][-1] == ("CAR-2", "in_use")
    assert status.unconfirmed == [] and not unanswered(status)
    assert case.steps("schedule_call") == ["callback:call:1"]
    assert status.callback is not None and status.callback.state == "completed"
    await replays(case)


async def test_a_member_with_one_channel_goes_straight_to_the_call_back(solo: Runner) -> None:
    t = make_ticket(
        "s1-missing-car.json",
        customer={"email": None, "app_user_id": None, "preferred_channel": "sms"},
    )
    case = await solo.open(t)
    await to_pickup(case)
    await silent(case, "pickup-1", "sms", timedelta(minutes=30))
    await case.booked_call()
    status = await case.status()
    assert events(status, "no_second_channel") == ["pickup-1: sms is the only channel on file"]
    assert events(status, "call_back") == ["pickup-1: calling the customer to ask"]
    assert [s for s in case.to_customer() if s and s.startswith("ask:pickup-1")] == [
        "ask:pickup-1:sms"
    ]
    assert status.question is not None and status.question.id == "pickup-1"


async def test_a_customer_with_one_channel_and_no_phone_goes_straight_to_ops(
    solo: Runner,
) -> None:
    case = await solo.open("s4-wrong-size.json")  # email only, out of stock: a choice to make
    await silent(case, "substitute", "email", timedelta(days=1))
    status = await case.approval("compensation")
    (reason,) = unanswered(status)
    assert reason.startswith("no answer to substitute (")
    assert reason.endswith(
        "asked by email: nothing is assumed; the customer gets their money back (no "
        "substitute is chosen for them); a person must ask the customer"
    )
    assert [s for s in case.to_customer() if s and s.startswith("ask:")] == ["ask:substitute:email"]
    # Not a choice made for them: their money back, recorded as unconfirmed.
    # 27.00 of the 54.00 refund (the limit) is paid at once; the rest waits with the coupon.
    assert [i.kind for i in status.compensation] == ["refund", "refund", "coupon", "perk"]
    assert events(status, "refund_by_default") == ["nobody chose between a substitute and a refund"]
    assert status.unconfirmed and status.unconfirmed[0].startswith("substitute: ")
    assert case.steps("place_substitute") == []


async def test_silence_at_the_horn_is_neither_found_nor_missing(solo: Runner) -> None:
    case = await solo.open("s1-missing-car.json", ESCALATE)
    await silent(case, "locate-CAR-1-1", "email", timedelta(minutes=30))
    await silent(case, "locate-CAR-1-1", "sms", timedelta(minutes=30))
    status = await case.until(lambda s: s.stage == "follow_up", "follow-up")
    # Not found: no second horn and no car booked for a member who may be sitting in CAR-1.
    assert case.steps("locate_vehicle") == ["locate:CAR-1:1"]
    assert case.steps("rebook_vehicle") == [] and case.steps("release_booking") == []
    assert [(b.vehicle, b.status) for b in status.bookings] == [("CAR-1", "unconfirmed")]
    (reason,) = unanswered(status)
    assert reason.startswith("no answer to locate-CAR-1-1 (")
    assert "CAR-1 stays booked for the member, nothing more is booked" in reason
    outcome = await case.result()
    assert (outcome.remedy_succeeded, outcome.remedy) == (False, "unconfirmed")


async def test_an_unanswered_follow_up_is_unconfirmed_satisfaction_not_resolved(
    solo: Runner, world: World
) -> None:
    world.stock["SHORTS-BLUE-M"].quantity = 2  # shipped at once: only the follow-up is asked
    t = make_ticket("s4-wrong-size.json", customer={"phone": "+15550100007"})
    case = await solo.open(t)
    outcome = await case.result()
    status = await case.status()
    told = case.to_customer()
    assert told.index("ask:follow-up-1:reminder-1:email") < told.index("ask:follow-up-1:sms")
    assert told[-1] == "closed-unanswered:email"
    (reason,) = unanswered(status)
    assert reason.startswith("no answer to follow-up-1 (")
    assert "the case closes as unreachable" in reason
    assert (outcome.resolution, outcome.satisfaction, outcome.remedy) == (
        "unreachable",
        "unconfirmed",
        "succeeded",
    )


async def test_a_case_cancelled_during_the_question_call_back_stops_calling(
    solo: Runner,
) -> None:
    case = await solo.open("s1-missing-car.json")
    await silent_at_pickup(case)
    await case.booked_call()
    await case.cancel("the member found another way home")
    outcome = await case.result()
    assert outcome.resolution == "cancelled"
    described = await case.callback.describe()
    assert described.status is not None and described.status.name == "CANCELED"
    assert case.steps("schedule_call") == ["callback:call:1"]
    await replays(case)
