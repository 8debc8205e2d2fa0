"""Makegood deployed with MAKEGOOD_DATABASE_URL: a worker process and an API process on the real
dev server, the case index, the receipt-free part of a case and the webhook replay guard in a
real PostgreSQL database (the password from PGPASSWORD, as in docker-compose.yml).

The worker's case index records the case as it opens and closes and the archiver completes
the row; the API finds a duplicate ticket's case through that index (the answer carries the
index's note); a replayed Zendesk delivery is refused by the guard's table; and no SQLite
file for these stores appears in the data folder.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from makegood.api.replay_store import FILE_NAME
from tests.api_harness import Api
from tests.deployment import AGENT, deployed
from tests.postgres import PASSWORD, Cluster, pg_cluster  # noqa: F401
from tests.test_api import zendesk_body

S5 = Path(__file__).resolve().parent.parent / "examples" / "tickets" / "s5-wrong-drink.json"
S5_TICKET = json.loads(S5.read_text())


async def fetch(url: str, sql: str, *args: Any) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(url)
    try:
        return [dict(r) for r in await conn.fetch(sql, *args)]
    finally:
        await conn.close()


async def test_worker_and_api_keep_the_index_and_the_replay_guard_in_postgresql(
    tmp_path: Path,
    pg_cluster: Cluster,  # noqa: F811
) -> None:
    database = await pg_cluster.create_database()
    url = pg_cluster.url(database)
    data = tmp_path / "data"
    async with (
        deployed(
            data,
            MAKEGOOD_DATABASE_URL=pg_cluster.url(database, password=False),
            PGPASSWORD=PASSWORD,
            MAKEGOOD_ARCHIVE_EVERY_S="0.2",
        ) as d,
        httpx.AsyncClient(base_url=d.api_url, timeout=30) as http,
    ):
        assert (await d.ok("open", str(S5))).startswith("opened case-T-3001 for ticket T-3001")
        status = await d.until("case-T-3001", lambda s: s.stage == "closed", "closed")
        assert status.resolution == "resolved"

        # The worker indexed the case in PostgreSQL; its archiver completed the row there.
        for _ in range(300):
            (row,) = await fetch(url, "SELECT * FROM cases WHERE case_id = 'case-T-3001'")
            if row["archived_at"] is not None:
                break
            await asyncio.sleep(0.1)
        assert row["ticket_id"] == "T-3001" and row["resolution"] == "resolved", row
        assert row["archive_key"] is not None, "never archived"

        # The duplicate ticket: the API answers from the index (only the index gives a note).
        again = await http.post(
            "/cases", json=S5_TICKET, headers={"authorization": f"Bearer {AGENT}"}
        )
        assert again.status_code == 200, again.text
        body = again.json()
        assert (body["case_id"], body["created"]) == ("case-T-3001", False)
        assert body["note"].startswith("closed ") and body["note"].endswith(", resolved"), body

        # A signed Zendesk delivery, then the same bytes again: refused through the PG guard.
        api = Api(http, d.client, None, None)  # type: ignore[arg-type]  # signing only
        at = datetime.now(UTC)
        opened = await api.zendesk(zendesk_body(770001), at=at)
        assert opened.status_code == 201, opened.text
        replayed = await api.zendesk(zendesk_body(770001), at=at)  # the same bytes, byte for byte
        assert replayed.status_code == 409, replayed.text
        assert replayed.json()["detail"].endswith("was already received")
        deliveries = await fetch(url, "SELECT state FROM deliveries")
        assert [r["state"] for r in deliveries] == ["done"], deliveries

    # Nothing of these stores went to SQLite files in the data folder.
    assert not (data / "cases.sqlite").exists()
    assert not (data / FILE_NAME).exists()
