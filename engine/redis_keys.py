"""Every Redis key we use and every queue name, in one place (arq's `constants.py`, ours).

Nobody else spells a key (a queue, a health check, a wake channel, one of arq's per-job keys, a
lock, a breaker, a quota): they call these functions. This is the only module that imports
`arq.constants` (an import-linter contract keeps it so), so the day arq is replaced, or its key
layout changes, this module and the seam modules that use it are what changes.

Layout, all under this deployment's `REDIS_PREFIX` except arq's own per-job keys:

| key                                   | what                                               |
| ------------------------------------- | -------------------------------------------------- |
| `{prefix}:queue:{name}`               | a queue: sorted set of job ids scored by run-at ms |
| `{prefix}:queue:{name}:health-check`  | arq's health line of the queue's workers (expires) |
| `{prefix}:queue:{name}:wake`          | pub/sub: "look at the queue now" (engine.worker)   |
| `{prefix}:cron:{name}`                | the name (so the job id) of a cron job             |
| `{prefix}:engine:replicas`            | engine heartbeats (engine.heartbeat)               |
| `{prefix}:engine:replica:{name}`      | one replica's role and start time (expires)        |
| `{prefix}:consoles`                   | consoles attached now (engine.console_presence)    |
| `{prefix}:scheduler:sentinel`         | set after each full pass (absent: Redis was lost)  |
| `{prefix}:tick-buffer:{REGION}`       | lock: one buffered follow-up per region            |
| `{prefix}:breaker:{platform}`         | a platform's circuit breaker (engine.resilience)   |
| `{prefix}:quota…`                     | shared quotas (the `limits` library's keys)        |
| `{prefix}:quota-pause:{platform}:{t}` | a quota paused by a Retry-After                    |
| `{prefix}:alerts:events:{minute}`     | accepted/refused app events per minute (alerts)    |
| `{prefix}:alerts:notified`            | alert states already sent to the webhooks          |
| `arq:job:{job id}`                    | a job's payload (arq)                              |
| `arq:in-progress:{job id}`            | a job a worker runs now (arq)                      |
| `arq:retry:{job id}`                  | a job's try count (arq)                            |
| `arq:result:{job id}`                 | a finished job's result, kept an hour (arq)        |
| `abort_jobs_ss`                       | arq's abort set, shared by every arq app           |

Our job ids start with `{prefix}:` (each queue module documents its own), so arq's per-job keys
stay inside the namespace too: `arq:job:{prefix}:…`.
"""

from __future__ import annotations

from arq.constants import (
    abort_jobs_ss,
    in_progress_key_prefix,
    job_key_prefix,
    result_key_prefix,
    retry_key_prefix,
)

from storage.redis import key
from storage.settings import Settings

TICKS = "ticks"
FETCH = "fetch"
PUBLISH = "publish"
ROLLUPS = "rollups"
METRICS = "metrics"  # post metrics reads (engine.post_metrics)
# Our queues, in the order the console shows them.
QUEUES: tuple[str, ...] = (TICKS, FETCH, PUBLISH, ROLLUPS, METRICS)

ABORT_JOBS = abort_jobs_ss
IN_PROGRESS_PREFIX = in_progress_key_prefix  # for scripts that build the key themselves
RESULT_PREFIX = result_key_prefix


def queue_key(settings: Settings, name: str) -> str:
    """The sorted set of a queue (arq's `queue_name`)."""
    return key(settings, "queue", name)


def health_check_key(settings: Settings, name: str) -> str:
    return f"{queue_key(settings, name)}:health-check"


def wake_channel(queue: str) -> str:
    """Pub/sub channel of a queue (its full key): a message means "look at the queue now"."""
    return f"{queue}:wake"


def cron_name(settings: Settings, name: str) -> str:
    """A cron job's name; arq makes its job id from it (`{name}:{time}`): one per fire time."""
    return key(settings, "cron", name)


def job_key(job_id: str) -> str:
    return job_key_prefix + job_id


def in_progress_key(job_id: str) -> str:
    return in_progress_key_prefix + job_id


def retry_key(job_id: str) -> str:
    return retry_key_prefix + job_id


def result_key(job_id: str) -> str:
    return result_key_prefix + job_id


def result_pattern(settings: Settings) -> str:
    """SCAN pattern of the results of our jobs (ids start with the prefix)."""
    return f"{result_key_prefix}{settings.redis_prefix}:*"


def replicas_key(settings: Settings) -> str:
    return key(settings, "engine", "replicas")


def replica_key(settings: Settings, name: str) -> str:
    return key(settings, "engine", "replica", name)


def consoles_key(settings: Settings) -> str:
    """Sorted set of the consoles attached now: member their identity, score the beat ms."""
    return key(settings, "consoles")


def scheduler_sentinel_key(settings: Settings) -> str:
    return key(settings, "scheduler", "sentinel")


def tick_buffer_key(settings: Settings, region_code: str) -> str:
    return key(settings, "tick-buffer", region_code)


def breaker_key(settings: Settings, platform: str) -> str:
    return key(settings, "breaker", platform)


def quota_prefix(settings: Settings) -> str:
    """The prefix under which the `limits` library keeps its counters."""
    return key(settings, "quota")


def quota_pause_key(settings: Settings, platform: str, token_id: str) -> str:
    return key(settings, "quota-pause", platform, token_id)


def alert_events_key(settings: Settings, minute: int) -> str:
    return key(settings, "alerts", "events", str(minute))


def alerts_notified_key(settings: Settings) -> str:
    return key(settings, "alerts", "notified")
