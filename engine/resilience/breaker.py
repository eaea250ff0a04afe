"""A circuit breaker per platform whose state lives in Redis, shared by every worker and process.

States: **closed** (calls flow; outcomes are counted in a time window), **open** (calls are
refused until `open_until`; the caller defers its work, it does not fail it), **half_open**
(the cool-down is over: exactly one caller at a time gets a probe lease; its success closes the
breaker, its failure opens it again; a probe that never reports, say its worker died, loses its
lease after `probe_timeout_s` and the next caller probes).

It opens when, within `window_s`, at least `min_calls` outcomes were seen and the failure ratio
reached `failure_ratio`, or after `consecutive_failures` failures in a row (for platforms with
little traffic). Every transition is one Lua script run against Redis server time, so two
processes never both probe and no count is lost. (A test may hand the breaker a `clock`
instead: the scripts then use the time it passes, and the test moves time by hand.)

Usage::

    breaker = CircuitBreaker(redis, settings, "youtube")
    permit = await breaker.allow()          # BreakerOpen(retry_in_s=…) while open
    ... call the platform ...
    await breaker.record_success(permit)    # or record_failure(permit, reason="HTTP 503")

Which outcomes count as failures is the caller's call: 5xx, timeouts and connection errors do;
a 404 for a deleted account or a 401 for one token do not (the platform is healthy).
See `engine.resilience.retry.Failure.counts_against_platform`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from redis.asyncio import Redis

from engine import metrics, redis_keys
from storage.clock import Clock
from storage.settings import Settings


def _now(arg: int) -> str:
    """Lua: `now` in ms, from ARGV[arg] when the caller passed a clock's time, else Redis's."""
    return f"""
local now = tonumber(ARGV[{arg}])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""


# KEYS[1] state hash; ARGV[1] probe lease ms, ARGV[2] now ms or ''. Returns {allowed, state,
# wait_ms}.
_ALLOW = (
    _now(2)
    + """
local k = KEYS[1]
local state = redis.call('HGET', k, 'state') or 'closed'
if state == 'closed' then return {1, 'closed', 0} end
if state == 'open' then
  local open_until = tonumber(redis.call('HGET', k, 'open_until') or '0')
  if now < open_until then return {0, 'open', open_until - now} end
  redis.call('HSET', k, 'state', 'half_open', 'probe_until', now + tonumber(ARGV[1]),
             'changed_at', now)
  return {1, 'half_open', 0}
end
local probe_until = tonumber(redis.call('HGET', k, 'probe_until') or '0')
if now < probe_until then return {0, 'half_open', probe_until - now} end
redis.call('HSET', k, 'probe_until', now + tonumber(ARGV[1]))
return {1, 'half_open', 0}
"""
)

# Recording outcomes, one or many at once (engine.resilience.tally): KEYS[1] state hash;
# ARGV: calls, failures, failures after the last success, any success (1/0), window ms, min
# calls, ratio per mille, consecutive limit, open ms, reason, now ms or ''. The counts land as
# if recorded one by one in order (a half-open breaker: any failure reopens it, else it closes).
_RECORD = (
    _now(11)
    + """
local k = KEYS[1]
local n, f, tail = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local function open_now(reason)
  redis.call('HSET', k, 'state', 'open', 'opened_at', now, 'open_until', now + tonumber(ARGV[9]),
             'changed_at', now, 'reason', reason, 'probe_until', 0)
  return 'open'
end
local state = redis.call('HGET', k, 'state') or 'closed'
if state == 'half_open' then
  if f == 0 then
    redis.call('HSET', k, 'state', 'closed', 'changed_at', now, 'win_start', now, 'calls', 0,
               'failures', 0, 'consecutive', 0, 'probe_until', 0)
    return 'closed'
  end
  return open_now('probe failed: ' .. ARGV[10])
end
if state == 'open' then return 'open' end
local win_start = tonumber(redis.call('HGET', k, 'win_start') or '0')
if now - win_start > tonumber(ARGV[5]) then
  redis.call('HSET', k, 'win_start', now, 'calls', 0, 'failures', 0)
end
local calls = redis.call('HINCRBY', k, 'calls', n)
local failures = redis.call('HINCRBY', k, 'failures', f)
local consecutive = tail
if tonumber(ARGV[4]) == 1 then
  redis.call('HSET', k, 'consecutive', tail)
else
  consecutive = redis.call('HINCRBY', k, 'consecutive', tail)
end
if f == 0 then return 'closed' end
if consecutive >= tonumber(ARGV[8]) then
  return open_now(consecutive .. ' failures in a row, last: ' .. ARGV[10])
end
if calls >= tonumber(ARGV[6]) and failures * 1000 >= tonumber(ARGV[7]) * calls then
  return open_now(failures .. '/' .. calls .. ' calls failed, last: ' .. ARGV[10])
end
return 'closed'
"""
)


def _export(platform: str, state: BreakerState) -> None:
    """The state as this process last saw it, for Prometheus (1 open, 0.5 half-open, 0 closed)."""
    level = {BreakerState.OPEN: 1.0, BreakerState.HALF_OPEN: 0.5}.get(state, 0.0)
    metrics.BREAKER_OPEN.labels(platform).set(level)


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    window_s: float = 30.0
    min_calls: int = 20
    failure_ratio: float = 0.5
    consecutive_failures: int = 10
    open_s: float = 30.0
    probe_timeout_s: float = 10.0


@dataclass(frozen=True, slots=True)
class Permit:
    """What `allow()` granted: a normal call, or the half-open probe."""

    platform: str
    state: BreakerState

    @property
    def probe(self) -> bool:
        return self.state == BreakerState.HALF_OPEN


class BreakerOpen(Exception):
    """The platform's breaker refuses calls for now: defer the work by `retry_in_s`."""

    def __init__(self, platform: str, state: BreakerState, retry_in_s: float) -> None:
        self.platform = platform
        self.state = state
        self.retry_in_s = retry_in_s
        super().__init__(f"{platform} circuit {state.value}; retry in {retry_in_s:.1f}s")


@dataclass(frozen=True, slots=True)
class BreakerStatus:
    """A breaker as the console shows it."""

    platform: str
    state: BreakerState
    calls: int
    failures: int
    opened_at: datetime | None
    open_until: datetime | None
    reason: str | None


def _ms_to_dt(raw: bytes | None) -> datetime | None:
    if not raw or int(raw) <= 0:
        return None
    return datetime.fromtimestamp(int(raw) / 1000, UTC)


class CircuitBreaker:
    def __init__(
        self,
        redis: Redis,
        settings: Settings,
        platform: str,
        config: BreakerConfig | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.redis = redis
        self.platform = platform
        self.config = config or BreakerConfig()
        # None: Redis server time, one clock for every process. Tests pass their own.
        self.clock = clock
        self.key = redis_keys.breaker_key(settings, platform)
        self._allow = redis.register_script(_ALLOW)
        self._record = redis.register_script(_RECORD)

    async def allow(self) -> Permit:
        """A permit to call the platform now, or BreakerOpen with how long to wait."""
        probe_ms = int(self.config.probe_timeout_s * 1000)
        allowed, state, wait_ms = await self._allow(
            keys=[self.key], args=[probe_ms, self._clock_ms()]
        )
        current = BreakerState(state.decode() if isinstance(state, bytes) else state)
        if not int(allowed):
            raise BreakerOpen(self.platform, current, int(wait_ms) / 1000)
        return Permit(self.platform, current)

    async def record_success(self, permit: Permit | None = None) -> BreakerState:
        return await self._record_outcome(True, "")

    async def record_failure(self, permit: Permit | None = None, reason: str = "") -> BreakerState:
        return await self._record_outcome(False, reason[:200] or "failure")

    async def _record_outcome(self, ok: bool, reason: str) -> BreakerState:
        failed = 0 if ok else 1
        return await self.record_many(1, failed, failed, ok, reason)

    async def record_many(
        self, calls: int, failures: int, trailing: int, any_success: bool, reason: str = ""
    ) -> BreakerState:
        """Many outcomes in one call: `calls` of which `failures` failed, `trailing` of them
        after the last success (engine.resilience.tally keeps these counts)."""
        c = self.config
        result = await self._record(
            keys=[self.key],
            args=[
                calls,
                failures,
                trailing,
                1 if any_success else 0,
                int(c.window_s * 1000),
                c.min_calls,
                int(c.failure_ratio * 1000),
                c.consecutive_failures,
                int(c.open_s * 1000),
                reason[:200] or "failure",
                self._clock_ms(),
            ],
        )
        state = BreakerState(result.decode() if isinstance(result, bytes) else result)
        _export(self.platform, state)
        return state

    async def status(self) -> BreakerStatus:
        raw = await self.redis.hgetall(self.key)  # type: ignore[misc]
        fields = {k.decode(): v for k, v in raw.items()}
        state = BreakerState(fields.get("state", b"closed").decode())
        _export(self.platform, state)
        reason = fields.get("reason")
        return BreakerStatus(
            platform=self.platform,
            state=state,
            calls=int(fields.get("calls", 0)),
            failures=int(fields.get("failures", 0)),
            opened_at=_ms_to_dt(fields.get("opened_at")) if state != BreakerState.CLOSED else None,
            open_until=_ms_to_dt(fields.get("open_until")) if state == BreakerState.OPEN else None,
            reason=reason.decode() if reason and state != BreakerState.CLOSED else None,
        )

    def _clock_ms(self) -> int | str:
        """The clock's time for the scripts, or '' (they read Redis server time)."""
        return "" if self.clock is None else int(self.clock().timestamp() * 1000)

    async def force_open(self, seconds: float, reason: str) -> None:
        """Open by hand (operations, tests): no call for `seconds`."""
        if self.clock is not None:
            now_ms = int(self.clock().timestamp() * 1000)
        else:
            now_s, now_us = await self.redis.time()
            now_ms = int(now_s) * 1000 + int(now_us) // 1000
        await self.redis.hset(  # type: ignore[misc]
            self.key,
            mapping={
                "state": "open",
                "opened_at": now_ms,
                "open_until": now_ms + int(seconds * 1000),
                "changed_at": now_ms,
                "reason": reason,
                "probe_until": 0,
            },
        )

    async def reset(self) -> None:
        """Close by hand and forget the counts."""
        await self.redis.delete(self.key)
