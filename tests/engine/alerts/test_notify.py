"""Alert webhooks (engine.alerts.notify) against a real HTTP receiver on 127.0.0.1: one call per
state change, retries on a 500, one call however many engines judge at once, nothing when
unset, and the URL's token never in a log line."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import structlog
from pydantic import SecretStr, ValidationError
from redis.asyncio import Redis
from tenacity import wait_none

from engine.alerts import notify, sampler
from engine.alerts.conditions import BY_NAME
from engine.alerts.evaluate import AlertStatus, AlertTracker, State
from engine.alerts.facts import Facts
from engine.alerts.notify import Notifier
from engine.runtime import Runtime
from storage.database import Database
from storage.models import DeadLetter
from storage.queries.alerts import Counted, Silence
from storage.settings import Settings

TOKEN = "T0KENinTHEpath9"


@dataclass
class Receiver:
    """Answers POSTs with `codes` in turn (then 200) and keeps what it got."""

    codes: list[int] = field(default_factory=list)
    got: list[tuple[str, dict[str, str], dict[str, Any]]] = field(default_factory=list)
    port: int = 0

    def url(self, path: str = f"/hook/{TOKEN}") -> str:
        return f"http://127.0.0.1:{self.port}{path}?token=q{TOKEN}"

    def bodies(self) -> list[dict[str, Any]]:
        return [body for _, _, body in self.got]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    recv = Receiver()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with lock:
                recv.got.append((self.path, dict(self.headers), body))
                code = recv.codes.pop(0) if recv.codes else 200
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    recv.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield recv
    finally:
        server.shutdown()
        server.server_close()


def hooked(settings: Settings, *, page: str | None = None, ticket: str | None = None) -> Settings:
    return settings.replace(
        alerts={
            "webhook_page": SecretStr(page) if page else None,
            "webhook_ticket": SecretStr(ticket) if ticket else None,
        }
    )


def unknown_posts(now: datetime, count: int, began: datetime | None) -> Facts:
    """Facts on which only PublishOutcomeUnknown (page, for 0 s) can hold; the rest is unknown."""
    return Facts(now=now, publish_unknown=Counted(count, began))


def status(name: str, state: State, since: datetime, silenced: bool = False) -> AlertStatus:
    silence = Silence(1, name, since + timedelta(hours=1), "why", "op", since) if silenced else None
    return AlertStatus(BY_NAME[name], state, since, 3.0, "detail", silence)


async def test_one_call_per_change_with_the_payload(
    test_settings: Settings, redis: Redis, receiver: Receiver
) -> None:
    notifier = Notifier(redis, hooked(test_settings, page=receiver.url()), wait=wait_none())
    tracker = AlertTracker()
    t0 = datetime.now(UTC)
    began = t0 - timedelta(minutes=3)
    try:
        with structlog.testing.capture_logs() as logged:
            for step in range(3):  # firing, judged three times: one call
                statuses, _ = tracker.evaluate(
                    unknown_posts(t0 + timedelta(seconds=15 * step), 2, began)
                )
                await notifier.observe(statuses)
            await notifier.idle()
            assert [b["state"] for b in receiver.bodies()] == ["firing"]

            for step in range(3, 5):  # resolved, judged twice: one call
                statuses, _ = tracker.evaluate(
                    unknown_posts(t0 + timedelta(seconds=15 * step), 0, None)
                )
                await notifier.observe(statuses)
            await notifier.idle()
    finally:
        await notifier.close()

    condition = BY_NAME["PublishOutcomeUnknown"]
    firing, resolved = receiver.bodies()
    assert firing == {
        "id": f"PublishOutcomeUnknown:firing:{began.isoformat()}",
        "name": "PublishOutcomeUnknown",
        "severity": "page",
        "state": "firing",
        "since": began.isoformat(),
        "summary": "posts whose outcome is unknown are waiting for a person",
        "runbook": condition.runbook,
        "value": 2,
        "threshold": 0,
        "unit": "count",
        "value_unit": "count",
        "detail": "2 waiting",
    }
    assert resolved["state"] == "resolved" and resolved["value"] == 0
    assert resolved["since"] == (t0 + timedelta(seconds=45)).isoformat()  # when it cleared
    path, headers, _ = receiver.got[0]
    assert path.startswith(f"/hook/{TOKEN}")
    assert headers["Idempotency-Key"] == firing["id"]
    assert [e["event"] for e in logged if e["event"].startswith("alerts.")] == [
        "alerts.notified",
        "alerts.notified",
    ]
    assert TOKEN not in repr(logged)


async def test_a_500_is_tried_again_then_taken_a_400_is_not(
    test_settings: Settings, redis: Redis, receiver: Receiver
) -> None:
    notifier = Notifier(redis, hooked(test_settings, page=receiver.url()), wait=wait_none())
    now = datetime.now(UTC)
    receiver.codes = [500, 503]
    try:
        with structlog.testing.capture_logs() as logged:
            assert await notifier.send(
                notify.Notice(status("RedisUnreachable", State.FIRING, now), "firing")
            )
            assert len(receiver.got) == 3
            assert len({h["Idempotency-Key"] for _, h, _ in receiver.got}) == 1

            receiver.codes = [400]
            assert not await notifier.send(
                notify.Notice(status("RedisUnreachable", State.OK, now), "resolved")
            )
            assert len(receiver.got) == 4  # refused for good: not tried again

            receiver.codes = [500] * 10
            assert not await notifier.send(
                notify.Notice(status("RedisUnreachable", State.OK, now), "resolved")
            )
            assert len(receiver.got) == 4 + notify.TRIES  # bounded
    finally:
        await notifier.close()
    events = [e["event"] for e in logged]
    assert events.count("alerts.notify_try_failed") == 2 + notify.TRIES
    assert "alerts.notify_refused" in events and "alerts.notify_failed" in events
    assert TOKEN not in repr(logged)


async def test_an_unreachable_receiver_is_retried_and_its_url_not_logged(
    test_settings: Settings, redis: Redis, receiver: Receiver
) -> None:
    port = receiver.port
    url = receiver.url()
    notifier = Notifier(redis, hooked(test_settings, page=url), wait=wait_none())
    notifier.urls[BY_NAME["RedisUnreachable"].severity] = url.replace(str(port), "1")  # refused
    try:
        with structlog.testing.capture_logs() as logged:
            sent = await notifier.send(
                notify.Notice(status("RedisUnreachable", State.FIRING, datetime.now(UTC)), "firing")
            )
    finally:
        await notifier.close()
    assert not sent
    assert [e["event"] for e in logged].count("alerts.notify_try_failed") == notify.TRIES
    assert TOKEN not in repr(logged)


async def test_two_engines_judging_at_once_send_each_change_once(
    test_settings: Settings, redis: Redis, receiver: Receiver
) -> None:
    settings = hooked(test_settings, page=receiver.url())
    other = Redis.from_url(settings.redis_url or "")
    engines = [
        Notifier(redis, settings, wait=wait_none()),
        Notifier(other, settings, wait=wait_none()),
    ]
    t0 = datetime.now(UTC)
    try:
        for cycle in range(4):
            state = State.FIRING if cycle % 2 == 0 else State.OK
            # Each replica's tracker saw it begin at its own moment: `since` differs.
            await asyncio.gather(
                *(
                    engine.observe([status("TickFailureRate", state, t0 + timedelta(seconds=i))])
                    for i, engine in enumerate(engines)
                )
            )
            # A restarted engine (a fresh tracker) judging the same state sends nothing either.
            await engines[cycle % 2].observe([status("TickFailureRate", state, t0)])
        for engine in engines:
            await engine.idle()
    finally:
        for engine in engines:
            await engine.close()
        await other.aclose()
    assert [b["state"] for b in receiver.bodies()] == ["firing", "resolved", "firing", "resolved"]


async def test_nothing_sent_when_unset_silenced_or_not_firing(
    test_settings: Settings, redis: Redis, receiver: Receiver
) -> None:
    assert test_settings.alerts.webhook_page is None and test_settings.alerts.webhook_ticket is None
    assert Notifier.from_settings(redis, test_settings) is None

    notifier = Notifier(redis, hooked(test_settings, ticket=receiver.url()), wait=wait_none())
    now = datetime.now(UTC)
    try:
        sent = await notifier.observe(
            [
                status("RedisUnreachable", State.FIRING, now),  # page: no page URL
                status("DeadLettersGrowing", State.FIRING, now, silenced=True),
                status("TickLagHigh", State.PENDING, now),
                status("QuotaNearlyUsed", State.UNKNOWN, now),
                status("TokenExpiring", State.OK, now),  # never fired: nothing resolves
            ]
        )
        await notifier.idle()
    finally:
        await notifier.close()
    assert sent == [] and receiver.got == []
    assert await redis.hgetall(notify.notified_key(test_settings)) == {}


async def test_the_engine_loop_notifies_a_condition_that_really_holds(
    test_settings: Settings, db: Database, receiver: Receiver
) -> None:
    async with db.session() as session:
        session.add(DeadLetter(kind="fetch", dedupe_key="k", error="e", payload={}))
        await session.commit()
    settings = hooked(test_settings, ticket=receiver.url())
    rt = await Runtime.connect(settings)
    notifier = Notifier.from_settings(rt.redis, settings)
    assert notifier is not None
    stop = asyncio.Event()
    loop = asyncio.create_task(sampler.run(rt, stop, notifier))
    try:
        for _ in range(200):
            if receiver.got:
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await loop
        await rt.close()
    assert [(b["name"], b["state"]) for b in receiver.bodies()] == [
        ("DeadLettersGrowing", "firing")
    ]


@pytest.mark.parametrize(
    "url",
    [
        f"http://hooks.example.com/{TOKEN}",  # clear text over the network
        f"ftp://hooks.example.com/{TOKEN}",
        f"https://hooks.example.com:x{TOKEN}/",
        f"https:///{TOKEN}",
    ],
)
def test_a_bad_webhook_url_is_refused_without_repeating_it(url: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(alerts={"webhook_page": url}, _env_file=None)  # type: ignore[call-arg]
    assert "ALERT_WEBHOOK_PAGE:" in str(refused.value)
    assert TOKEN not in str(refused.value)


def test_an_empty_webhook_is_off_and_loopback_http_is_allowed() -> None:
    off = Settings(alerts={"webhook_page": ""}, _env_file=None)  # type: ignore[call-arg]
    assert off.alerts.webhook_page is None
    local = Settings(alerts={"webhook_ticket": "http://127.0.0.1:9/h"}, _env_file=None)  # type: ignore[call-arg]
    assert notify.webhooks(local) == {BY_NAME["TickLagHigh"].severity: "http://127.0.0.1:9/h"}
