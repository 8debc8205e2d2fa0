"""Personal data on a real dev server: histories and memos hold ciphertext, `makegood
timeline` reads them with the key, a rotation keeps old cases readable, and the related-case
lookup finds cases under old (unkeyed) and new (keyed) pseudonyms."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from makegood.adapters.local.store import LocalStore
from makegood.audit.formats import as_text
from makegood.audit.timeline import timeline
from makegood.domain import contract
from makegood.domain.case import CaseInput
from makegood.domain.pseudonyms import legacy
from makegood.domain.ticket import Ticket
from makegood.privacy.codec import (
    ENCODING,
    KEY_ID,
    PayloadKeyError,
    data_converter,
    decode_history,
    keys_of,
    payloads_in,
)
from makegood.privacy.keys import KeyRing
from makegood.registry import build_worker
from tests.harness import (
    ROOT,
    TEST_KEYS,
    binary,
    local_adapters,
    playbooks,
    start,
    temporal_env,
    ticket,
)

EMAIL = "mia.chen@example.com"


def address(env: WorkflowEnvironment) -> str:
    return env.client.service_client.config.target_host


async def run(*args: str, env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def s5_with_email() -> Ticket:
    t = ticket("s5-wrong-drink.json")
    return t.model_copy(update={"customer": t.customer.model_copy(update={"email": EMAIL})})


async def test_histories_and_memos_hold_no_personal_data_but_the_timeline_shows_it(
    dev_env: WorkflowEnvironment, store: LocalStore, task_queue: str, tmp_path: Path
) -> None:
    t = s5_with_email()
    async with build_worker(dev_env.client, task_queue, local_adapters(store).activities()):
        case = await start(dev_env.client, store, t, task_queue)
        await case.result()
    personal = [EMAIL, t.customer.name, t.customer.phone or "", t.incident.summary, "Mia"]
    env = temporal_env(address(dev_env), MAKEGOOD_DATA_DIR=str(tmp_path))

    # What the server holds, as the temporal CLI shows it to anyone with namespace access:
    # the history and the description (memo, search attributes).
    temporal = binary("temporal")
    for command in ("show", "describe"):
        code, shown, err = await run(
            temporal, "workflow", command, "--workflow-id", case.id, "--output", "json",
            "--address", address(dev_env), env=env, cwd=tmp_path,
        )  # fmt: skip
        assert code == 0, err
        assert json.loads(shown) and "YmluYXJ5L2VuY3J5cHRlZA" in shown  # "binary/encrypted"
        for value in personal:
            assert value not in shown, f"{value!r} in plain text in `temporal workflow {command}`"
    history = await case.handle.fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    assert started.input.payloads[0].metadata["encoding"] == ENCODING
    assert started.input.payloads[0].metadata[KEY_ID] == b"test-key-1"

    # The memo: nothing personal, no free text; search attributes: pseudonyms only.
    described = await case.handle.describe()
    assert await described.memo() == {"kind": "wrong_order", "resolution": "resolved"}
    attributes = {k.name: v for k, v in described.typed_search_attributes}
    pseudonyms = keys_of(dev_env.client).pseudonyms
    assert attributes[contract.SA_CUSTOMER] == pseudonyms.customer(t.customer.id)
    assert attributes[contract.SA_ASSET] == pseudonyms.asset(t.incident.reference)
    assert t.customer.id not in json.dumps(attributes)

    # The CLI, with the key, reads it all back.
    code, out, err = await run(
        sys.executable, str(ROOT / "starter.py"), "timeline", case.id, env=env, cwd=ROOT
    )
    assert code == 0, err
    assert t.incident.summary in out and (t.customer.phone or "?") in out
    # ...and without it, says which key it would need.
    other = {**env, **KeyRing.generate("k-other").as_env()}
    code, out, err = await run(
        sys.executable, str(ROOT / "starter.py"), "timeline", case.id, env=other, cwd=ROOT
    )
    assert code == 2 and out == ""
    assert "payload encrypted with key id 'test-key-1', which is not configured here" in err
    assert "MAKEGOOD_PAYLOAD_KEYS has: k-other" in err


async def test_a_case_written_with_key_a_reads_and_runs_on_after_rotating_to_key_b(
    dev_env: WorkflowEnvironment, store: LocalStore, task_queue: str
) -> None:
    a = TEST_KEYS
    rotated = KeyRing({**a.payload_keys, "k-b": os.urandom(32)}, "k-b", a.pseudonym_key)
    b_client = await Client.connect(address(dev_env), data_converter=data_converter(rotated))
    activities = local_adapters(store).activities()
    async with build_worker(dev_env.client, task_queue, activities):
        case = await start(dev_env.client, store, ticket("s4-wrong-size.json"), task_queue)
        await case.question("substitute")
    # The worker restarts with key B active and key A kept; the case goes on.
    async with build_worker(b_client, task_queue, activities):
        case.client = b_client
        await case.answer("substitute", "substitute", value="SHORTS-NAVY-M")
        await case.until(lambda s: s.stage == "follow_up", "follow-up")

    raw = await case.handle.fetch_history()
    used = set()
    for event in raw.events:
        for p in payloads_in(event):
            if p.metadata.get("encoding") == ENCODING:
                used.add(p.metadata[KEY_ID].decode())
    assert used == {"test-key-1", "k-b"}
    lines = as_text(timeline([await decode_history(raw, b_client.data_converter)]))
    assert "substitute" in lines and "wrong_item" in lines

    only_b = KeyRing({"k-b": rotated.payload_keys["k-b"]}, "k-b", a.pseudonym_key, "the test")
    with pytest.raises(PayloadKeyError, match="key id 'test-key-1', which is not configured"):
        await decode_history(raw, data_converter(only_b))


async def test_related_cases_are_found_under_old_and_new_pseudonyms_and_described(
    dev_env: WorkflowEnvironment, store: LocalStore, task_queue: str
) -> None:
    base = ticket("s2-laptop-screen.json")

    def report(n: int) -> Ticket:
        return base.model_copy(update={"id": f"{base.id}-{n}"})

    book = playbooks()
    async with build_worker(dev_env.client, task_queue, local_adapters(store).activities()):
        # A case opened by the previous release: plain payloads, unkeyed pseudonyms, and a
        # memo that still names the reference, serial, fault and summary.
        old, inc = report(1), report(1).incident
        before = await Client.connect(address(dev_env), data_converter=pydantic_data_converter)
        await before.start_workflow(
            contract.RECOVERY_WORKFLOW,
            CaseInput(
                ticket=old,
                playbook=book.for_kind(inc.kind),
                playbook_version=book.version,
                retries=book.retries,
                ops_contact="ops@makegood.example.com",
                received_at=datetime.now(UTC),
            ),
            id=old.case_id,
            task_queue=task_queue,
            search_attributes=TypedSearchAttributes(
                [
                    _keyword(contract.SA_CUSTOMER, legacy("customer", old.customer.id)),
                    _keyword(contract.SA_ASSET, legacy("asset", inc.asset or "")),
                    _keyword(contract.SA_KIND, inc.kind.value),
                ]
            ),
            memo={
                "kind": inc.kind.value,
                "reference": inc.reference,
                "asset": inc.asset,
                "fault": inc.fault,
                "summary": "the old memo's summary",
            },
        )
        newer = await start(dev_env.client, store, report(2), task_queue, book)
        assert await (await newer.handle.describe()).memo() == {"kind": "warranty_fault"}
        await _visible(dev_env.client, [old.case_id, newer.id])

        latest = await start(dev_env.client, store, report(3), task_queue, book)
        status = await latest.until(lambda s: len(s.related) == 2, "two related cases")

    found = {c.case_id: c for c in status.related}
    assert set(found) == {old.case_id, newer.id}
    assert found[old.case_id].summary == "the old memo's summary"  # from the old memo
    assert found[newer.id].summary == inc.summary  # from the newer case's encrypted input
    for c in found.values():
        assert (c.kind, c.reference, c.asset, c.fault, c.same_asset) == (
            "warranty_fault",
            inc.reference,
            inc.asset,
            inc.fault,
            True,
        )


def _keyword(name: str, value: str) -> SearchAttributePair[str]:
    return SearchAttributePair(SearchAttributeKey.for_keyword(name), value)


async def _visible(client: Client, case_ids: list[str]) -> None:
    """Visibility is eventually consistent: wait until it lists these cases."""
    query = " OR ".join(f'WorkflowId = "{i}"' for i in case_ids)
    for _ in range(300):
        if len([w async for w in client.list_workflows(query)]) == len(case_ids):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"visibility never listed {case_ids}")
