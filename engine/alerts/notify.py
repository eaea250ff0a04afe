"""Alert notifications: a webhook called once per state change (firing, resolved), by one engine.

Off unless `ALERT_WEBHOOK_PAGE` / `ALERT_WEBHOOK_TICKET` is set: each severity has its own URL,
and a condition whose severity has none is not notified (nor claimed, so setting the URL later
notifies what is firing then). The engine's alert loop (`engine.alerts.sampler.run`) judges the
facts every 15 s with the console's `AlertTracker` and hands the statuses to `Notifier.observe`.

Invariants and costs:
- **One send per change, however many engines judge.** Each condition's last notified state
  ("firing" or "ok", absent = "ok") lives in one Redis hash (`notified_key`). An engine moves it
  to what it sees in one Lua script; only the engine whose script moved it sends. So a change is
  sent once even when replicas' trackers see it at different moments (each tracker remembers its
  own "first seen", so `since` can differ between replicas), a restarted engine does not repeat
  a firing alert, and an alert that resolved while every engine was down is sent as resolved.
  Pending, unknown and silenced-firing states claim nothing. A Redis wipe forgets the hash: what
  is firing then is sent once more. Cost: one script call per evaluation, all conditions in it.
- **Never blocks the engine.** Each send is its own task; the loop only claims and moves on.
- **Bounded retries, then given up.** A send is tried `TRIES` times (tenacity: exponential
  backoff with full jitter, capped at `MAX_WAIT_S` a wait and `GIVE_UP_S` overall) on connection
  errors, 408, 429 and 5xx; any other 4xx is final. A change claimed but never delivered is
  logged (`alerts.notify_failed`) and not retried later: at most once after the claim; the
  console and Prometheus still show the alert. On shutdown in-flight sends get `STOP_GRACE_S`.
- **Receivers can drop repeats.** The payload's `id` (`name:state:since`) is also sent as the
  `Idempotency-Key` header.
- **The URL is a secret.** It is never logged, nor is an httpx error's text (which holds the
  URL): logs name the severity, the URL's host, the status code or the error's type.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx
from redis.asyncio import Redis
from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)
from tenacity.wait import wait_base

from engine import logs, redis_keys
from engine.alerts.conditions import Severity, summary_of
from engine.alerts.evaluate import AlertStatus, State
from storage.settings import Settings

TRIES = 5
MAX_WAIT_S = 20.0
GIVE_UP_S = 90.0
TIMEOUT_S = 10.0
STOP_GRACE_S = 5.0

log = logs.get("engine.alerts")

# ARGV: name, state, name, state, …; returns the names whose notified state this call moved.
_CLAIM = """
local moved = {}
for i = 1, #ARGV, 2 do
  local old = redis.call('HGET', KEYS[1], ARGV[i]) or 'ok'
  if old ~= ARGV[i + 1] then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
    table.insert(moved, ARGV[i])
  end
end
return moved
"""


def notified_key(settings: Settings) -> str:
    """Hash: condition name → the state last notified ("firing" / "ok")."""
    return redis_keys.alerts_notified_key(settings)


def webhooks(settings: Settings) -> dict[Severity, str]:
    """The configured URL of each severity (none: notifications are off)."""
    found = {
        Severity.PAGE: settings.alerts.webhook_page,
        Severity.TICKET: settings.alerts.webhook_ticket,
    }
    return {sev: url.get_secret_value().strip() for sev, url in found.items() if url is not None}


@dataclass(frozen=True, slots=True)
class Notice:
    """One state change to send."""

    status: AlertStatus
    state: str  # "firing" | "resolved"

    @property
    def id(self) -> str:
        since = self.status.since.isoformat() if self.status.since else "-"
        return f"{self.status.condition.name}:{self.state}:{since}"

    def payload(self) -> dict[str, Any]:
        c = self.status.condition
        return {
            "id": self.id,
            "name": c.name,
            "severity": c.severity.value,
            "state": self.state,
            "since": self.status.since.isoformat() if self.status.since else None,
            "summary": summary_of(c),
            "runbook": c.runbook,
            "value": self.status.value,
            "threshold": c.threshold,
            "unit": c.unit,  # the threshold's
            "value_unit": c.observed_unit,
            "detail": self.status.detail,
        }


class _Retryable(Exception):
    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


class _Final(Exception):  # a 4xx the receiver will answer again: trying again is pointless
    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def _want(status: AlertStatus) -> str | None:
    """The notified state this status asks for, or None when it claims nothing."""
    if status.state == State.FIRING and not status.silenced:
        return "firing"
    if status.state == State.OK:
        return "ok"
    return None


class Notifier:
    def __init__(
        self,
        redis: Redis,
        settings: Settings,
        *,
        wait: wait_base | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.redis = redis
        self.settings = settings
        self.urls = webhooks(settings)
        self._wait = wait or wait_random_exponential(multiplier=1, max=MAX_WAIT_S)
        self._client = client or httpx.AsyncClient(timeout=TIMEOUT_S, follow_redirects=False)
        self._sending: set[asyncio.Task[bool]] = set()

    @classmethod
    def from_settings(cls, redis: Redis, settings: Settings) -> Notifier | None:
        return cls(redis, settings) if webhooks(settings) else None

    async def observe(self, statuses: Iterable[AlertStatus]) -> list[Notice]:
        """Claim the changes among `statuses`; start a send for each claimed one."""
        wanted = {
            s.condition.name: (s, want)
            for s in statuses
            if s.condition.severity in self.urls and (want := _want(s)) is not None
        }
        if not wanted:
            return []
        args = [part for name, (_, want) in wanted.items() for part in (name, want)]
        moved = await self.redis.eval(_CLAIM, 1, notified_key(self.settings), *args)  # type: ignore[misc]
        notices = []
        for raw in moved:
            status, want = wanted[raw.decode() if isinstance(raw, bytes) else str(raw)]
            notice = Notice(status, "firing" if want == "firing" else "resolved")
            notices.append(notice)
            task = asyncio.create_task(self.send(notice))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)
        return notices

    async def send(self, notice: Notice) -> bool:
        """POST one notice with bounded retries; True when the receiver took it."""
        severity = notice.status.condition.severity
        url = self.urls[severity]
        fields = {
            "alert": notice.status.condition.name,
            "state": notice.state,
            "severity": severity.value,
            "host": httpx.URL(url).host,
        }
        retrying = AsyncRetrying(
            stop=stop_after_attempt(TRIES) | stop_after_delay(GIVE_UP_S),
            wait=self._wait,
            retry=retry_if_exception(lambda exc: isinstance(exc, _Retryable)),
        )
        try:
            async for attempt in retrying:
                with attempt:
                    await self._post(url, notice, attempt.retry_state.attempt_number, fields)
        except RetryError as exc:
            last = exc.last_attempt.exception()
            why = last.why if isinstance(last, _Retryable) else type(last).__name__
            log.error("alerts.notify_failed", tries=TRIES, error=why, **fields)
            return False
        except _Final as exc:
            log.error("alerts.notify_refused", error=exc.why, **fields)
            return False
        log.info("alerts.notified", **fields)
        return True

    async def _post(self, url: str, notice: Notice, attempt: int, fields: dict[str, str]) -> None:
        try:
            response = await self._client.post(
                url, json=notice.payload(), headers={"Idempotency-Key": notice.id}
            )
        except httpx.HTTPError as exc:  # its text holds the URL: only the type is kept
            why = type(exc).__name__
            log.warning("alerts.notify_try_failed", attempt=attempt, error=why, **fields)
            raise _Retryable(why) from None
        code = response.status_code
        if code < 300:
            return
        why = f"HTTP {code}"
        if code in (408, 429) or code >= 500:
            log.warning("alerts.notify_try_failed", attempt=attempt, error=why, **fields)
            raise _Retryable(why)
        raise _Final(why)

    async def close(self) -> None:
        """Let in-flight sends finish for a moment, cancel the rest, close the client."""
        if self._sending:
            _, late = await asyncio.wait(set(self._sending), timeout=STOP_GRACE_S)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self._client.aclose()

    async def idle(self) -> None:
        """Wait for every send started so far (tests)."""
        while self._sending:
            await asyncio.gather(*set(self._sending), return_exceptions=True)
