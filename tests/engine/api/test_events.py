"""POST /v1/events: dedupe, skew correction, enrichment, partial-invalid batches, limits."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest
from redis.asyncio import Redis
from sqlalchemy import select
from structlog.testing import capture_logs

from engine.alerts import event_counts
from engine.api.context import ApiContext
from engine.api.schemas import MAX_BATCH_EVENTS, MAX_EVENT_BYTES
from storage.database import Database
from storage.models import Event
from storage.settings import Settings
from tests.support.engine import eventually
from tests.support.experiments import api_ctx, client, event, make_experiment
from tests.support.process import free_port

__all__ = ["api_ctx", "client"]


async def _stored(db: Database) -> list[Event]:
    async with db.session() as session:
        return list(await session.scalars(select(Event).order_by(Event.client_ts)))


async def test_repeated_batch_is_stored_once(client: httpx.AsyncClient, db: Database) -> None:
    batch = {"events": [event("d1", "open"), event("d1", "tap"), event("d2", "open")]}
    first = (await client.post("/v1/events", json=batch)).json()
    assert first["stored"] == 3 and first["duplicates"] == 0 and first["refused"] == []
    second = (await client.post("/v1/events", json=batch)).json()
    assert second["stored"] == 0 and second["duplicates"] == 3
    # A repeat inside one batch counts once too.
    one = event("d3", "open")
    third = (await client.post("/v1/events", json={"events": [one, one]})).json()
    assert third["stored"] == 1 and third["duplicates"] == 1
    assert len(await _stored(db)) == 4


async def test_clock_skew_is_corrected_from_sent_at(
    client: httpx.AsyncClient, db: Database
) -> None:
    now = datetime.now(UTC)
    # The device clock runs 2 hours behind: it stamps and sends in its own time.
    device_now = now - timedelta(hours=2)
    happened = device_now - timedelta(minutes=5)
    batch = {"sent_at": device_now.isoformat(), "events": [event("skewed", "open", happened)]}
    body = (await client.post("/v1/events", json=batch)).json()
    assert body["stored"] == 1
    assert body["skew_seconds"] == pytest.approx(7200, abs=5)
    [stored] = await _stored(db)
    assert stored.client_ts == happened
    assert abs((stored.occurred_at - (now - timedelta(minutes=5))).total_seconds()) < 5


async def test_no_sent_at_means_no_correction(client: httpx.AsyncClient, db: Database) -> None:
    at = datetime.now(UTC) - timedelta(hours=1)
    body = (await client.post("/v1/events", json={"events": [event("u", "open", at)]})).json()
    assert body["skew_seconds"] == 0
    [stored] = await _stored(db)
    assert stored.occurred_at == stored.client_ts == at


async def test_events_carry_the_units_assignments(client: httpx.AsyncClient, db: Database) -> None:
    await make_experiment(db, "paywall")
    served = (await client.post("/v1/assignment", json={"unit_id": "enriched"})).json()
    variant = served["assignments"][0]["variant"]
    batch = {"events": [event("enriched", "purchase"), event("stranger", "purchase")]}
    assert (await client.post("/v1/events", json=batch)).json()["stored"] == 2
    by_unit = {e.unit_id: e for e in await _stored(db)}
    assert by_unit["enriched"].assignments == {"paywall": variant}
    assert by_unit["stranger"].assignments == {}


async def test_partial_invalid_batch_stores_the_valid_events(
    client: httpx.AsyncClient, db: Database
) -> None:
    good = event("ok", "open", plan="pro")
    too_big = event("ok", "open", blob="x" * (MAX_EVENT_BYTES + 10))
    future = event("ok", "open", datetime.now(UTC) + timedelta(days=1))
    naive_hour_ago = (datetime.now(UTC) - timedelta(hours=1)).replace(tzinfo=None).isoformat()
    batch = {
        "events": [
            good,
            {**event("ok", "open"), "event_id": "not-a-uuid"},
            {**event("ok", "bad name!")},
            {**event("ok", "open"), "timestamp": naive_hour_ago},  # no offset
            too_big,
            future,
            "not an object",
            {**event("ok", "open"), "properties": {"nul": "a\u0000b"}},
        ]
    }
    response = await client.post("/v1/events", json=batch)
    assert response.status_code == 200
    body = response.json()
    assert body["received"] == 8 and body["stored"] == 1
    refused = {r["index"]: r["reason"] for r in body["refused"]}
    assert sorted(refused) == [1, 2, 3, 4, 5, 6, 7]
    assert refused[1].startswith("event_id:")
    assert refused[2].startswith("name:")
    assert "timezone" in refused[3]
    assert "at most" in refused[4]
    assert "future" in refused[5]
    assert "NUL" in refused[7]
    assert body["refused"][0]["event_id"] == "not-a-uuid"
    [stored] = await _stored(db)
    assert stored.event_id == uuid.UUID(good["event_id"])
    assert stored.properties == {"plan": "pro"}


async def test_batches_figures_reach_the_console_within_a_second(
    api_ctx: ApiContext, client: httpx.AsyncClient
) -> None:
    """Accepted and refused counts are added up in the process and written by a timer, so
    the alerts' rejection rate sees them without a Redis round trip per batch."""
    redis, settings = api_ctx.redis, api_ctx.settings
    await api_ctx.tally.close()  # what earlier tests left pending is written
    before = await event_counts.window(redis, settings, datetime.now(UTC), 180)
    for _ in range(3):
        batch = {"events": [event("d1", "open"), event("d1", "tap"), {"name": "no id"}]}
        assert (await client.post("/v1/events", json=batch)).status_code == 200

    async def written() -> bool:
        now = await event_counts.window(redis, settings, datetime.now(UTC), 180)
        return (now.accepted, now.refused) == (before.accepted + 6, before.refused + 3)

    await eventually(written, timeout=10 * event_counts.FLUSH_S)


async def test_a_dead_redis_drops_the_figures_and_never_raises(test_settings: Settings) -> None:
    dead = Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.2)
    tally = event_counts.Tally(dead, test_settings, flush_s=0.01)
    with capture_logs() as logged:
        tally.add(accepted=5, refused=1, now=datetime.now(UTC))
        await asyncio.sleep(0.1)  # the timer's write fails
        await tally.close()  # nothing is left to write, and nothing raised
    assert [e["event"] for e in logged] == ["event_counts.dropped"]
    await dead.aclose()


async def test_all_invalid_batch_answers_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/events", json={"events": [{"name": "x"}]})
    assert response.status_code == 422
    assert response.json()["stored"] == 0
    assert "event_id" in response.json()["refused"][0]["reason"]


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"[]", 400, "must be an object"),
        (b'{"events": []}', 400, "1 to"),
        (b'{"events": [], "x": 1}', 400, "unknown batch fields"),
        (orjson.dumps({"events": [{}] * (MAX_BATCH_EVENTS + 1)}), 400, "1 to"),
        (b'{"sent_at": "yesterday", "events": [{}]}', 400, "sent_at"),
    ],
)
async def test_malformed_batches(
    client: httpx.AsyncClient, body: bytes, status: int, fragment: str
) -> None:
    response = await client.post(
        "/v1/events", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == status
    assert fragment in response.json()["detail"]


async def test_oversized_body_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/events",
        content=b"{" + b" " * (4 * 1024 * 1024 + 1) + b"}",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413


async def test_offsets_postgres_cannot_parse_are_stored_in_utc(
    client: httpx.AsyncClient, db: Database
) -> None:
    # Python accepts +16:00; Postgres refuses offsets past 15:59. Found by the fuzz test.
    batch = {
        "sent_at": "2000-01-01T00:00:00Z",
        "events": [{**event("far", "open"), "timestamp": "2000-01-01T00:00:00+16:00"}],
    }
    response = await client.post("/v1/events", json=batch)
    assert response.status_code == 200, response.text
    assert response.json()["stored"] == 1
    [stored] = await _stored(db)
    assert stored.client_ts == datetime(1999, 12, 31, 8, 0, tzinfo=UTC)
