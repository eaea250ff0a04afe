"""The publish job: one publication, one attempt, never a duplicate (a batch: the same per row).

How "never twice" holds with an at-least-once queue:

1. The job carries (publication, generation). A reschedule, cancel or retry bumps the
   generation in Postgres first, so an old job finds a different number and drops itself.
2. `claim` moves SCHEDULED -> PUBLISHING in one conditional UPDATE: of two runs of the same job
   (a redelivery, a replica after Redis was rebuilt) exactly one gets the row.
3. A run that finds its publication still PUBLISHING is a re-run after a worker died mid-attempt.
   It takes over only once the old attempt is older than the job time limit (arq re-delivers no
   sooner either) and then verifies first: it looks the post up by its idempotency key, or, on a
   platform without a lookup, stops at "outcome unknown" for a person to decide.
4. An error after the request may have left (timeout, dropped connection, 500) is never retried
   blindly: same verify-first rule.

The batch path (engine.jobs.publish_batch) is these rules per row: a batch job carries
(publication, generation) pairs, claims them with `claim_batch` (one conditional UPDATE for up to
50 rows, each claimed or skipped on its own), and sends each claimed row through `_attempt`
below; a row it did not get goes through `_not_claimed` (stale, gone, or a take-over).

Breaker open, publishing limit reached, no encryption key, or a token that does not decrypt with
it: the publication is deferred (new generation, later due time), not failed. An unreadable token
is a configuration error (a wrong or rotated-away ENCRYPTION_KEY), so it is checked before the
breaker is asked and blames nobody: no breaker count, no needs-reauth, no failed post.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from arq.worker import Retry

from engine import logs, metrics, publish_queue
from engine.jobs.publish_recorder import Recorder
from engine.jobs.send_slots import SendSlots
from engine.oauth.publish_gate import token_for_publish
from engine.publishers import build_publishers
from engine.publishers.base import Published, Publisher, PublishRequest
from engine.publishers.transport import AiohttpTransport, LeanClient
from engine.resilience import (
    BreakerOpen,
    CircuitBreaker,
    Failure,
    FailureKind,
    OutcomeUnknown,
    RateLimiter,
)
from engine.resilience.breaker import Permit
from engine.resilience.tally import BreakerTally
from engine.runtime import Runtime
from storage.crypto import EncryptionKeyError, TokenCipher, TokenUnreadable, cipher
from storage.errors import DB_DOWN_ERRORS
from storage.models import AttemptOutcome, ConnectionStatus, Platform, PublicationStatus
from storage.queries import publishing
from storage.queries.publishing import AttemptResult, Done, JobRef, Work

log = logs.get("engine.publish")


@dataclass(frozen=True, slots=True)
class PublishPolicy:
    max_attempts: int = 5
    backoff_base_s: float = 5.0
    backoff_max_s: float = 900.0
    timeout_s: float = publish_queue.MAX_PUBLISH_TIMEOUT_S  # the job's time limit
    request_timeout_s: float = 30.0
    config_retry_s: float = 60.0  # retry delay while ENCRYPTION_KEY is missing or wrong

    @classmethod
    def for_settings(cls, settings: Any) -> PublishPolicy:
        timeout = publish_queue.publish_timeout_s(settings)  # requests get half of it
        return cls(timeout_s=timeout, request_timeout_s=timeout / 2)

    def backoff(self, attempts: int) -> float:
        """Exponential backoff with full jitter."""
        ceiling = min(self.backoff_max_s, self.backoff_base_s * 2 ** max(attempts - 1, 0))
        return random.uniform(ceiling / 2, ceiling)


class PublishContext:
    """What publish jobs of one worker share: HTTP client, publishers, breakers, limiter."""

    def __init__(
        self,
        rt: Runtime,
        policy: PublishPolicy | None = None,
        base_urls: dict[Platform, str] | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.rt = rt
        self.policy = policy or PublishPolicy.for_settings(rt.settings)
        # aiohttp's pool under httpx's API: a third of the CPU per request, and plain requests
        # skip httpx's own request path (transport.py).
        self.client = client or LeanClient(
            AiohttpTransport(httpx.Limits(max_connections=200, max_keepalive_connections=100)),
            httpx.Timeout(self.policy.request_timeout_s, connect=5.0),
        )
        self.publishers = build_publishers(self.client, rt.settings.tracking, base_urls)
        self.limiter = RateLimiter(rt.redis, rt.settings)
        self._breakers: dict[str, CircuitBreaker] = {}
        self._tallies: dict[str, BreakerTally] = {}
        self._cipher: TokenCipher | None = None
        self.slots = SendSlots()  # batch sends in flight in this process
        self.recorder = Recorder(rt.db.engine, self.flush_tallies)  # the batch jobs' writes

    def breaker(self, platform: str) -> CircuitBreaker:
        if platform not in self._breakers:
            self._breakers[platform] = CircuitBreaker(self.rt.redis, self.rt.settings, platform)
        return self._breakers[platform]

    def tally(self, platform: str) -> BreakerTally:
        if platform not in self._tallies:
            self._tallies[platform] = BreakerTally(self.breaker(platform))
        return self._tallies[platform]

    async def flush_tallies(self) -> None:
        """Record the batch sends' breaker counts so far: one Redis call per platform."""
        for tally in list(self._tallies.values()):
            await tally.flush()

    def cipher(self) -> TokenCipher:
        if self._cipher is None:
            self._cipher = cipher(self.rt.settings)
        return self._cipher

    async def close(self) -> None:
        await self.recorder.close()
        await self.client.aclose()
        await self.limiter.close()


async def on_startup(ctx: dict[str, Any]) -> None:
    old = ctx.get("publishing")
    if isinstance(old, PublishContext):
        await old.close()
    ctx["publishing"] = PublishContext(ctx["runtime"])


async def publish(ctx: dict[str, Any], publication_id: int, generation: int) -> str:
    """arq entry point; the result word says what became of this publication."""
    pc: PublishContext = ctx["publishing"]
    try:
        outcome = await run_publication(pc, publication_id, generation)
        metrics.PUBLISH_RESULTS.labels(outcome).inc()
        return outcome
    except DB_DOWN_ERRORS as exc:
        log.warning("publish.db_unavailable", publication=publication_id, error=str(exc))
        raise Retry(defer=min(5 * ctx.get("job_try", 1), 60)) from exc


async def run_publication(pc: PublishContext, publication_id: int, generation: int) -> str:
    rt = pc.rt
    async with publishing.autocommit(rt.db.engine) as conn:
        claimed = await publishing.claim(conn, publication_id, generation, rt.name)
    if claimed is None:
        return await _not_claimed(pc, publication_id, generation)
    work, attempt_id = claimed.work, claimed.attempt_id
    publisher = pc.publishers.get(Platform(work.connection.platform))
    if publisher is None:
        result = AttemptResult(
            AttemptOutcome.PERMANENT, f"no publisher for platform {work.connection.platform!r}"
        )
        async with publishing.autocommit(rt.db.engine) as conn:
            await publishing.mark_failed(conn, work, attempt_id, result)
        return "failed"
    gate = await _gate(pc, work, publisher)
    if isinstance(gate, tuple):
        return await _release(pc, work, attempt_id, *gate)
    return await _attempt(
        pc, work, publisher, attempt_id, work.publication.verify_first, gate.permit, gate.token
    )


async def _not_claimed(pc: PublishContext, publication_id: int, generation: int) -> str:
    """Why the claim found nothing: gone, stale, or a re-run after a worker died mid-attempt."""
    async with pc.rt.db.session() as session:
        work = await publishing.load_work(session, publication_id)
    if work is None:
        return "gone"
    pub = work.publication
    if pub.generation != generation:
        return "stale"
    if pub.status == PublicationStatus.PUBLISHING.value:
        return await _take_over(pc, work)
    if pub.status == PublicationStatus.SCHEDULED.value:
        return "raced"  # scheduled again between our claim and this read
    return "stale"


@dataclass(frozen=True, slots=True)
class _Go:
    permit: Permit
    token: str


async def _gate(pc: PublishContext, work: Work, publisher: Publisher) -> tuple[float, str] | _Go:
    """A reason to wait (seconds, why), or the breaker's permit and the token to go ahead."""
    token = _read_token(pc, work)
    if isinstance(token, tuple):
        return token
    # The token store's word: refreshed now if due; needs-reauth or expired defers (oauth).
    token = await token_for_publish(
        pc.rt.db, pc.client, pc.cipher(), work.connection, token, pc.rt.settings
    )
    if isinstance(token, tuple):
        return token
    try:
        permit = await pc.breaker(publisher.platform.value).allow()
    except BreakerOpen as exc:
        return max(exc.retry_in_s, 0.5), f"{publisher.platform} circuit breaker open"
    wait = await pc.limiter.try_acquire(publisher.publish_limit, str(work.connection.id))
    if wait > 0:
        return wait, f"{publisher.platform} publishing limit reached for this account"
    return _Go(permit, token)


def _read_token(pc: PublishContext, work: Work) -> str | tuple[float, str]:
    """The account's access token, or (seconds, why) to defer: ENCRYPTION_KEY is missing, or
    is not the key this token was saved with. Neither says anything about the account."""
    try:
        return pc.cipher().decrypt(work.connection.token_encrypted)
    except EncryptionKeyError as exc:
        log.error("publish.no_encryption_key", error=str(exc))
        return pc.policy.config_retry_s, str(exc)
    except TokenUnreadable as exc:
        conn = work.connection
        log.error(
            "publish.token_unreadable",
            publication=work.publication.id,
            connection=conn.id,
            error=str(exc),
        )
        why = f"the token of {conn.platform} account {conn.display_name}: {exc}"
        return pc.policy.config_retry_s, why


async def _release(pc: PublishContext, work: Work, attempt_id: int, wait_s: float, why: str) -> str:
    """Nothing was sent: give the claim back, due later (jitter spreads a deferred herd)."""
    due = datetime.now(UTC) + timedelta(seconds=wait_s * (1 + random.random() * 0.2))
    async with publishing.autocommit(pc.rt.db.engine) as conn:
        new_gen = await publishing.release(conn, work, attempt_id, due, why)
    if new_gen is None:
        return "raced"
    await _enqueue(pc, work.publication.id, new_gen, due)
    log.info("publish.deferred", publication=work.publication.id, reason=why, wait_s=wait_s)
    return "deferred"


async def _enqueue(pc: PublishContext, publication_id: int, generation: int, due: datetime) -> None:
    try:
        await publish_queue.enqueue_publications(
            pc.rt.redis, pc.rt.settings, [JobRef(publication_id, generation, due)]
        )
    except Exception as exc:  # Postgres has it; the scheduler's reconcile enqueues it later.
        log.warning("publish.enqueue_failed", publication=publication_id, error=repr(exc))


async def _take_over(pc: PublishContext, work: Work) -> str:
    pub = work.publication
    generation = pub.generation
    stale_before = datetime.now(UTC) - timedelta(seconds=pc.policy.timeout_s)
    started = pub.started_at or datetime.min.replace(tzinfo=UTC)
    if started >= stale_before:
        # Another run may still be talking to the platform: come back when it cannot be.
        wait = (started - stale_before).total_seconds() + 1
        log.info("publish.busy_elsewhere", publication=pub.id, worker=pub.worker, wait_s=wait)
        raise Retry(defer=wait)
    async with pc.rt.db.transaction() as session:
        attempt_id = await publishing.take_over(
            session, pub.id, generation, pc.rt.name, stale_before
        )
    if attempt_id is None:
        return "raced"
    log.warning("publish.taken_over", publication=pub.id, previous_worker=pub.worker)
    publisher = pc.publishers.get(Platform(work.connection.platform))
    if publisher is None:
        return "failed"
    return await _attempt(pc, work, publisher, attempt_id, True, None, None)


async def _attempt(
    pc: PublishContext,
    work: Work,
    publisher: Publisher,
    attempt_id: int,
    verify_first: bool,
    permit: Permit | None,
    token: str | None,
    done: list[Done] | None = None,
) -> str:
    """One attempt of a claimed publication. With `done` (a batch), a confirmed publication is
    collected there for the batch to record in one statement instead of written at once."""
    pub, conn = work.publication, work.connection
    rt = pc.rt
    bound = log.bind(publication=pub.id, post=work.post.id, platform=conn.platform)
    expired = conn.expires_at is not None and conn.expires_at <= datetime.now(UTC)
    if conn.status == ConnectionStatus.NEEDS_REAUTH.value or expired:
        reason = conn.status_reason or "the token expired"
        if expired:
            async with rt.db.transaction() as session:
                await publishing.mark_needs_reauth(session, conn.id, "the token expired")
        return await _fail(pc, work, attempt_id, _reauth_result(work, reason), bound)
    if token is None:  # a take-over: no gate ran
        read = _read_token(pc, work)
        if isinstance(read, tuple):
            return await _release(pc, work, attempt_id, *read)
        token = read
    request = PublishRequest(
        publication_id=pub.id,
        idempotency_key=pub.idempotency_key,
        account_id=conn.account_id,
        access_token=token,
        body=work.post.body,
        media=list(work.post.media),
        checkpoint=dict(pub.checkpoint),
    )

    if verify_first:
        if not publisher.can_lookup:
            return await _unknown(
                pc,
                work,
                attempt_id,
                f"an earlier attempt may have reached {conn.platform}, which offers no lookup: "
                f"check {conn.display_name} and resolve",
                bound,
            )
        try:
            found = await publisher.lookup(request)
        except Failure as failure:
            return await _after_failure(
                pc, work, publisher, attempt_id, failure, bound, lookup=True
            )
        if found is not None:
            return await _published(pc, work, attempt_id, found, bound, found=True, done=done)

    async def checkpoint(data: dict[str, Any]) -> None:
        async with publishing.autocommit(rt.db.engine) as db_conn:
            await publishing.save_checkpoint(db_conn, pub.id, pub.generation, data)

    # A batch's normal sends are counted in the process's tally (one Redis call per flush);
    # a probe, and the single path, record at once.
    tally = done is not None and permit is not None and not permit.probe
    try:
        published = await publisher.publish(request, checkpoint)
    except Failure as failure:
        failed = failure.counts_against_platform
        await _record(pc, publisher, permit, tally, None if not failed else failure.message)
        return await _after_failure(pc, work, publisher, attempt_id, failure, bound)
    except Exception as exc:  # a publisher bug after the request may have left: treat as unknown
        bound.exception("publish.publisher_error")
        unknown = OutcomeUnknown(f"{type(exc).__name__}: {exc}")
        return await _after_failure(pc, work, publisher, attempt_id, unknown, bound)
    await _record(pc, publisher, permit, tally, None)
    return await _published(pc, work, attempt_id, published, bound, done=done)


async def _record(
    pc: PublishContext, publisher: Publisher, permit: Permit | None, tally: bool, failed: str | None
) -> None:
    """The breaker's count of one send: `failed` is the reason when it counts as a failure."""
    platform = publisher.platform.value
    if tally:
        if failed is None:
            pc.tally(platform).success()
        else:
            pc.tally(platform).failure(failed)
        return
    breaker = pc.breaker(platform)
    if failed is None:
        await breaker.record_success(permit)
    else:
        await breaker.record_failure(permit, reason=failed)


def _reauth_result(work: Work, reason: str) -> AttemptResult:
    return AttemptResult(
        AttemptOutcome.AUTH,
        f"{work.connection.platform} account {work.connection.display_name} needs "
        f"re-authorisation ({reason}); reconnect it, then retry",
    )


async def _published(
    pc: PublishContext,
    work: Work,
    attempt_id: int,
    published: Published,
    bound: Any,
    found: bool = False,
    done: list[Done] | None = None,
) -> str:
    if done is not None:
        done.append(Done(work, attempt_id, published.external_id, published.url, found))
        return "found" if found else "published"
    async with publishing.autocommit(pc.rt.db.engine) as conn:
        ok = await publishing.mark_published(
            conn,
            work,
            attempt_id,
            external_id=published.external_id,
            external_url=published.url,
            found=found,
        )
    bound.info("publish.published", external_id=published.external_id, found=found, current=ok)
    return "found" if found else "published"


async def _fail(
    pc: PublishContext,
    work: Work,
    attempt_id: int,
    result: AttemptResult,
    bound: Any,
) -> str:
    async with publishing.autocommit(pc.rt.db.engine) as conn:
        await publishing.mark_failed(conn, work, attempt_id, result)
    bound.warning("publish.failed", outcome=result.outcome.value, error=result.error)
    return "failed"


async def _unknown(
    pc: PublishContext, work: Work, attempt_id: int, message: str, bound: Any
) -> str:
    result = AttemptResult(AttemptOutcome.UNKNOWN, message)
    async with publishing.autocommit(pc.rt.db.engine) as conn:
        await publishing.mark_unknown(conn, work, attempt_id, result)
    bound.warning("publish.outcome_unknown", error=message)
    return "unknown"


async def _after_failure(
    pc: PublishContext,
    work: Work,
    publisher: Publisher,
    attempt_id: int,
    failure: Failure,
    bound: Any,
    lookup: bool = False,
) -> str:
    conn = work.connection
    attempts = work.publication.attempts + 1  # the claim counted this one
    message = failure.message
    if failure.kind == FailureKind.UNAUTHORIZED:
        async with pc.rt.db.transaction() as session:
            await publishing.mark_needs_reauth(session, conn.id, message)
        return await _fail(pc, work, attempt_id, _reauth_result(work, message), bound)
    if failure.kind in (FailureKind.PERMANENT, FailureKind.NOT_FOUND):
        if lookup:
            return await _unknown(pc, work, attempt_id, f"lookup failed: {message}", bound)
        result = AttemptResult(AttemptOutcome.PERMANENT, message, failure.status)
        return await _fail(pc, work, attempt_id, result, bound)
    # Transient, rate limited, or outcome unknown.
    maybe_sent = lookup or failure.kind == FailureKind.OUTCOME_UNKNOWN
    if maybe_sent and not publisher.can_lookup:
        return await _unknown(pc, work, attempt_id, message, bound)
    if attempts >= pc.policy.max_attempts:
        final = f"gave up after {attempts} attempts: {message}"
        if maybe_sent:
            return await _unknown(pc, work, attempt_id, final, bound)
        result = AttemptResult(AttemptOutcome.TRANSIENT, final, failure.status)
        return await _fail(pc, work, attempt_id, result, bound)
    delay = pc.policy.backoff(attempts)
    if failure.retry_after_s is not None:
        delay = max(delay, failure.retry_after_s)
        if failure.kind == FailureKind.RATE_LIMITED:
            await pc.limiter.pause(publisher.publish_limit, str(conn.id), failure.retry_after_s)
    due = datetime.now(UTC) + timedelta(seconds=delay)
    outcome = AttemptOutcome.UNKNOWN if maybe_sent else AttemptOutcome.TRANSIENT
    async with publishing.autocommit(pc.rt.db.engine) as db_conn:
        new_gen = await publishing.retry_later(
            db_conn,
            work,
            attempt_id,
            AttemptResult(outcome, message, failure.status),
            due,
            verify_first=maybe_sent,
        )
    if new_gen is None:
        return "raced"
    await _enqueue(pc, work.publication.id, new_gen, due)
    bound.info(
        "publish.retry", attempt=attempts, in_s=round(delay, 2), verify=maybe_sent, error=message
    )
    return "retry"
