"""The api's Prometheus exposition: valid for the parser, counting requests and events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.experiments import api_ctx, client  # noqa: F401 - fixtures


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_metrics_count_requests_and_events(client: httpx.AsyncClient) -> None:  # noqa: F811
    before = samples((await client.get("/metrics")).text)
    now = datetime.now(UTC).isoformat()
    event_id = str(uuid.uuid4())
    batch = {
        "sent_at": now,
        "events": [
            {"event_id": event_id, "unit_id": "u1", "name": "app_open", "timestamp": now},
            {"event_id": event_id, "unit_id": "u1", "name": "app_open", "timestamp": now},
            {"event_id": "not-a-uuid", "unit_id": "u1", "name": "app_open", "timestamp": now},
        ],
    }
    assert (await client.post("/v1/events", json=batch)).status_code == 200
    assert (await client.get("/no/such/route")).status_code == 404
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    after = samples(response.text)

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert delta("creatordeck_events_total", outcome="accepted") == 1
    assert delta("creatordeck_events_total", outcome="duplicate") == 1
    assert delta("creatordeck_events_total", outcome="refused") == 1
    assert (
        delta("creatordeck_api_requests_total", route="/v1/events", method="POST", status="200")
        == 1
    )
    assert delta("creatordeck_api_requests_total", route="other", method="GET", status="404") == 1
    assert delta("creatordeck_api_request_seconds_count", route="/v1/events") == 1
