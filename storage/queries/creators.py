"""Creators: import, the fetch pipeline's batched reads and writes, and the console's reads.

The fetch path (`load_for_fetch`, `write_fetch_results`) speaks to asyncpg directly with one
array-parameter statement per step, so a batch of any size costs the same few round trips.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import asyncpg
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import func, literal, select, update
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    Creator,
    CreatorStatus,
    FetchBatch,
    FollowerSample,
    JobRun,
    Region,
    TrackedPlatform,
)
from storage.queries import audit

_PHONE = re.compile(r"^\+?[\d\s().-]{7,}$")
_EMAIL = re.compile(r"[^@\s/]+@[^@\s/]+\.[^@\s/]+")


class CreatorInput(BaseModel):
    """A creator as given in an import file or typed in the console."""

    platform: TrackedPlatform
    external_id: str = Field(min_length=1, max_length=200, pattern=r"^\S+$")
    handle: str = Field(min_length=1, max_length=200)
    display_name: str | None = Field(default=None, max_length=300)
    region_code: str | None = Field(default=None, pattern=r"^[A-Z][A-Z0-9_]{1,63}$")
    contact_url: str | None = Field(default=None, max_length=500)
    status: CreatorStatus = CreatorStatus.ACTIVE

    @field_validator("handle")
    @classmethod
    def _handle(cls, value: str) -> str:
        return value.strip().lstrip("@")

    @field_validator("display_name", "region_code", "contact_url", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("contact_url")
    @classmethod
    def _link_only(cls, value: str | None) -> str | None:
        """A link to a page, never an email address or a phone number (we store no PII)."""
        if value is None:
            return None
        text = value.strip()
        if _PHONE.match(text):
            raise ValueError("contact_url must be a link (http/https), not a phone number")
        parts = urlsplit(text)
        if parts.scheme.lower() in ("mailto", "tel", "sms") or (
            not parts.scheme and _EMAIL.fullmatch(text)
        ):
            raise ValueError("contact_url must be a link (http/https), not an email or phone")
        if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
            raise ValueError("contact_url must be an http(s) link, e.g. https://linktr.ee/name")
        if "@" in parts.netloc:
            raise ValueError("contact_url must not carry credentials or an email address")
        return text


async def upsert_creators(session: AsyncSession, rows: Sequence[CreatorInput]) -> int:
    """Insert new creators, update known ones (same platform + external id). Commits."""
    if not rows:
        return 0
    values = [row.model_dump(mode="json") for row in rows]
    stmt = insert(Creator).values(values)
    stmt = stmt.on_conflict_do_update(
        constraint="uq_creator_platform_external",
        set_={
            "handle": stmt.excluded.handle,
            "display_name": stmt.excluded.display_name,
            "region_code": stmt.excluded.region_code,
            "contact_url": stmt.excluded.contact_url,
            "updated_at": func.now(),
        },
    )
    result = await session.execute(stmt.returning(Creator.id))
    written = len(result.all())
    await session.commit()
    return written


async def count_external_ids(
    session: AsyncSession, platform: str, external_ids: Sequence[str]
) -> set[str]:
    """Which of these external ids of a platform are already creators."""
    rows = await session.scalars(
        select(Creator.external_id).where(
            Creator.platform == platform, Creator.external_id.in_(list(external_ids))
        )
    )
    return set(rows)


async def ids_by_external(
    session: AsyncSession, platform: str, external_ids: Sequence[str]
) -> dict[str, int]:
    rows = await session.execute(
        select(Creator.external_id, Creator.id).where(
            Creator.platform == platform, Creator.external_id.in_(list(external_ids))
        )
    )
    return {external: creator_id for external, creator_id in rows}


async def insert_history(
    session: AsyncSession,
    rows: Sequence[tuple[int, datetime, int | None, int | None, int | None, int | None]],
) -> None:
    """Bulk-insert past samples (creator, observed_at, followers, following, posts, views);
    existing slots are kept. Commits."""
    if not rows:
        return
    driver = await _driver(session)
    await driver.execute(
        "INSERT INTO follower_sample (creator_id, observed_at, followers, following, posts, views) "
        "SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::bigint[], $4::bigint[], "
        "$5::bigint[], $6::bigint[]) ON CONFLICT DO NOTHING",
        *([list(column) for column in zip(*rows, strict=True)]),
    )
    await session.commit()


# --- the fetch pipeline -----------------------------------------------------------------------


def int_array(values: Sequence[int | None]) -> str:
    """A Postgres bigint[] literal ("{1,2,NULL}"), sent as ONE text parameter and cast in SQL
    (`$1::text::bigint[]`): asyncpg encodes a list element by element with type checks that
    cost more than the rest of the fetch path's Python work."""
    return "{" + ",".join("NULL" if v is None else str(int(v)) for v in values) + "}"


async def _driver(session: AsyncSession) -> asyncpg.Connection:
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    driver: asyncpg.Connection = raw.driver_connection  # type: ignore[assignment]
    return driver


async def due_creators(
    session: AsyncSession, region_code: str, slot: datetime
) -> list[tuple[int, str]]:
    """(id, platform) of the region's active creators not yet checked in this slot."""
    driver = await _driver(session)
    rows = await driver.fetch(
        "SELECT id, platform FROM creator WHERE region_code = $1 AND status = 'active' "
        "AND (last_slot_at IS NULL OR last_slot_at < $2) ORDER BY platform, id",
        region_code,
        slot,
    )
    return [(int(r[0]), str(r[1])) for r in rows]


async def due_creators_of(
    session: AsyncSession, region_codes: Sequence[str], slot: datetime
) -> dict[str, list[tuple[int, str]]]:
    """(id, platform) of the active creators not yet checked in this slot, per region: one
    query for a whole tick shard."""
    if not region_codes:
        return {}
    driver = await _driver(session)
    rows = await driver.fetch(
        "SELECT region_code, id, platform FROM creator WHERE region_code = ANY($1::text[]) "
        "AND status = 'active' AND (last_slot_at IS NULL OR last_slot_at < $2) "
        "ORDER BY region_code, platform, id",
        list(region_codes),
        slot,
    )
    found: dict[str, list[tuple[int, str]]] = {}
    for code, creator_id, platform in rows:
        found.setdefault(str(code), []).append((int(creator_id), str(platform)))
    return found


@dataclass(frozen=True, slots=True)
class FetchTarget:
    creator_id: int
    platform: str
    external_id: str
    etag: str | None
    last_modified: str | None


async def load_for_fetch(
    session: AsyncSession, ids: Sequence[int], slot: datetime
) -> list[FetchTarget]:
    """The creators of a fetch job still owed in this slot (a re-run skips what was written)."""
    driver = await _driver(session)
    rows = await driver.fetch(
        "SELECT id, platform, external_id, etag, last_modified FROM creator "
        "WHERE id = ANY($1::bigint[]) AND status = 'active' "
        "AND (last_slot_at IS NULL OR last_slot_at < $2) ORDER BY id",
        list(ids),
        slot,
    )
    return [FetchTarget(r[0], r[1], r[2], r[3], r[4]) for r in rows]


@dataclass(frozen=True, slots=True)
class SampleRow:
    creator_id: int
    followers: int | None
    following: int | None
    posts: int | None
    views: int | None
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True, slots=True)
class StatusChange:
    creator_id: int
    status: CreatorStatus
    error: str


@dataclass
class WriteReport:
    samples_written: int = 0
    creators_updated: int = 0
    not_modified: int = 0
    status_changed: int = 0


_INSERT_SAMPLES = """
INSERT INTO follower_sample (creator_id, observed_at, followers, following, posts, views)
SELECT u.id, $2, u.followers, u.following, u.posts, u.views
FROM unnest($1::text::bigint[], $3::text::bigint[], $4::text::bigint[], $5::text::bigint[],
            $6::text::bigint[])
     AS u(id, followers, following, posts, views)
ON CONFLICT DO NOTHING
"""

_UPDATE_FETCHED = """
UPDATE creator AS c
SET followers = u.followers, following = u.following, posts = u.posts, views = u.views,
    etag = u.etag, last_modified = u.last_modified, last_fetched_at = $2, last_slot_at = $3,
    last_error = NULL
FROM unnest($1::text::bigint[], $4::text::bigint[], $5::text::bigint[], $6::text::bigint[],
            $7::text::bigint[], $8::text[], $9::text[]) AS u(id, followers, following, posts,
                                                             views, etag,
                                         last_modified)
WHERE c.id = u.id
"""

_UPDATE_NOT_MODIFIED = """
UPDATE creator SET last_fetched_at = $2, last_slot_at = $3, last_error = NULL
WHERE id = ANY($1::bigint[])
"""

_UPDATE_STATUS = """
UPDATE creator AS c SET status = u.status, last_error = u.error, updated_at = $2
FROM unnest($1::bigint[], $3::text[], $4::text[]) AS u(id, status, error)
WHERE c.id = u.id
"""


async def write_fetch_results(
    session: AsyncSession,
    *,
    slot: datetime,
    fetched_at: datetime,
    samples: Sequence[SampleRow],
    not_modified: Sequence[int],
    status_changes: Sequence[StatusChange] = (),
    commit: bool = True,
) -> WriteReport:
    """One transaction for a batch: samples (idempotent per slot), latest stats, statuses.

    A 304 writes no sample: only the creator's check time moves (one statement for all of
    the batch's 304s). Commits unless `commit=False` (to join the caller's transaction).
    """
    driver = await _driver(session)
    report = WriteReport(not_modified=len(not_modified), status_changed=len(status_changes))
    if samples:
        ids = int_array([s.creator_id for s in samples])
        followers = int_array([s.followers for s in samples])
        following = int_array([s.following for s in samples])
        posts = int_array([s.posts for s in samples])
        views = int_array([s.views for s in samples])
        status = await driver.execute(
            _INSERT_SAMPLES, ids, slot, followers, following, posts, views
        )
        report.samples_written = int(status.rsplit(" ", 1)[-1])
        status = await driver.execute(
            _UPDATE_FETCHED,
            ids,
            fetched_at,
            slot,
            followers,
            following,
            posts,
            views,
            [s.etag for s in samples],
            [s.last_modified for s in samples],
        )
        report.creators_updated = int(status.rsplit(" ", 1)[-1])
    if not_modified:
        await driver.execute(_UPDATE_NOT_MODIFIED, list(not_modified), fetched_at, slot)
    if status_changes:
        await driver.execute(
            _UPDATE_STATUS,
            [c.creator_id for c in status_changes],
            fetched_at,
            [c.status.value for c in status_changes],
            [c.error[:2000] for c in status_changes],
        )
    if commit:
        await session.commit()
    return report


async def record_fetch_errors(session: AsyncSession, errors: dict[int, str]) -> None:
    """Note a transient error on creators (status unchanged). Commits."""
    if not errors:
        return
    driver = await _driver(session)
    await driver.execute(
        "UPDATE creator AS c SET last_error = u.error FROM unnest($1::bigint[], $2::text[]) "
        "AS u(id, error) WHERE c.id = u.id",
        list(errors),
        [e[:2000] for e in errors.values()],
    )
    await session.commit()


# --- fetch batches and the tick's ledger counts -----------------------------------------------


async def record_batch(
    session: AsyncSession,
    *,
    run_id: int,
    batch_no: int,
    platform: str,
    size: int,
    status: str,
    counts: dict[str, int],
    error: str | None = None,
) -> None:
    """Upsert one fetch job's outcome; a re-run replaces its row (so counts never double)."""
    stmt = insert(FetchBatch).values(
        run_id=run_id,
        batch_no=batch_no,
        platform=platform,
        size=size,
        status=status,
        counts=counts,
        error=error,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[FetchBatch.run_id, FetchBatch.batch_no],
        set_={
            "status": stmt.excluded.status,
            "counts": stmt.excluded.counts,
            "error": stmt.excluded.error,
            "attempts": FetchBatch.attempts + 1,
            "finished_at": func.now(),
        },
    )
    await session.execute(stmt)
    await session.commit()


async def add_batch_counts(
    session: AsyncSession,
    *,
    run_id: int,
    batch_no: int,
    platform: str,
    size: int,
    status: str,
    counts: dict[str, int],
    error: str | None = None,
) -> bool:
    """Add one attempt's counts to its batch row, in the caller's transaction (no commit).

    Written in the same transaction as the attempt's results, so a killed attempt adds
    nothing and a re-run (which skips creators already written) never counts twice.
    True when this is the batch's first report (its row is new).
    """
    existing = await session.get(FetchBatch, (run_id, batch_no), with_for_update=True)
    if existing is None:
        session.add(
            FetchBatch(
                run_id=run_id,
                batch_no=batch_no,
                platform=platform,
                size=size,
                status=status,
                counts=dict(counts),
                error=error,
            )
        )
        await session.flush()
        return True
    merged = dict(existing.counts or {})
    for name, value in counts.items():
        merged[name] = int(merged.get(name, 0)) + value
    existing.counts = merged
    existing.status = status
    existing.error = error
    existing.attempts = existing.attempts + 1
    existing.finished_at = datetime.now(UTC)
    await session.flush()
    return False


@dataclass
class BatchTotals:
    batches: int = 0
    done: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


async def batch_totals(session: AsyncSession, run_id: int) -> BatchTotals:
    """The run's batches summed in SQL (cheap however many batches there are)."""
    driver = await _driver(session)
    head = await driver.fetchrow(
        "SELECT count(*), count(*) FILTER (WHERE status = 'done') FROM fetch_batch "
        "WHERE run_id = $1",
        run_id,
    )
    sums = await driver.fetch(
        "SELECT e.key, sum(e.value::bigint) FROM fetch_batch b, jsonb_each_text(b.counts) e "
        "WHERE b.run_id = $1 AND e.value ~ '^-?[0-9]+$' GROUP BY e.key",
        run_id,
    )
    errors = await driver.fetch(
        "SELECT DISTINCT error FROM fetch_batch WHERE run_id = $1 AND error IS NOT NULL LIMIT 5",
        run_id,
    )
    return BatchTotals(
        batches=int(head[0]) if head else 0,
        done=int(head[1]) if head else 0,
        counts={str(r[0]): int(r[1]) for r in sums},
        errors=[str(r[0]) for r in errors],
    )


async def finished_batches(
    session: AsyncSession, run_id: int, first: int, last: int
) -> tuple[int, int]:
    """Of the run's batches numbered first..last: how many are done, and how many reported
    and wait to try again (deferred: breaker open, quota, transient errors)."""
    driver = await _driver(session)
    row = await driver.fetchrow(
        "SELECT count(*) FILTER (WHERE status = 'done'), "
        "count(*) FILTER (WHERE status = 'deferred') "
        "FROM fetch_batch WHERE run_id = $1 AND batch_no BETWEEN $2 AND $3",
        run_id,
        first,
        last,
    )
    return (int(row[0]), int(row[1])) if row else (0, 0)


async def merge_run_counts(session: AsyncSession, run_id: int, counts: dict[str, Any]) -> None:
    """Merge `counts` into a ledger row's counts (keys given replace those present). Commits."""
    await session.execute(
        update(JobRun)
        .where(JobRun.id == run_id)
        .values(counts=JobRun.counts.op("||")(literal(counts, type_=JSONB)))
    )
    await session.commit()


# --- the console's reads and edits ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreatorRow:
    id: int
    platform: str
    handle: str
    display_name: str | None
    region_code: str | None
    status: str
    followers: int | None
    change_24h: int | None
    change_7d: int | None
    growth_7d_pct: float | None
    last_fetched_at: datetime | None
    last_error: str | None
    spark: list[int]


_LIST = """
SELECT c.id, c.platform, c.handle, c.display_name, c.region_code, c.status, c.followers,
       c.last_fetched_at, c.last_error,
       (SELECT s.followers FROM follower_sample s WHERE s.creator_id = c.id
          AND s.observed_at <= $1::timestamptz - interval '24 hours'
          ORDER BY s.observed_at DESC LIMIT 1),
       (SELECT s.followers FROM follower_sample s WHERE s.creator_id = c.id
          AND s.observed_at <= $1::timestamptz - interval '7 days'
          ORDER BY s.observed_at DESC LIMIT 1),
       (SELECT s.followers FROM follower_sample s WHERE s.creator_id = c.id
          ORDER BY s.observed_at ASC LIMIT 1),
       ARRAY(SELECT t.followers FROM (SELECT s.followers, s.observed_at FROM follower_sample s
              WHERE s.creator_id = c.id AND s.observed_at > $1::timestamptz - interval '7 days'
              ORDER BY s.observed_at DESC LIMIT 30) t ORDER BY t.observed_at)
FROM creator c
WHERE ($2::text IS NULL OR c.region_code = $2)
  AND ($3::text IS NULL OR c.platform = $3)
  AND ($4::text IS NULL OR c.status = $4)
  AND ($5::text IS NULL OR c.handle ILIKE '%' || $5 || '%'
       OR c.display_name ILIKE '%' || $5 || '%')
ORDER BY c.followers DESC NULLS LAST, c.id
LIMIT $6 OFFSET $7
"""
# PostgreSQL sorts the filtered creators on (followers, id) first and runs the per-creator
# subqueries of the select list only for the LIMIT rows it returns (it postpones expensive
# target-list work past a sort + limit), so a window of 200 at any offset costs 200 lookups.

_COUNT = """
SELECT count(*) FROM creator c
WHERE ($1::text IS NULL OR c.region_code = $1)
  AND ($2::text IS NULL OR c.platform = $2)
  AND ($3::text IS NULL OR c.status = $3)
  AND ($4::text IS NULL OR c.handle ILIKE '%' || $4 || '%'
       OR c.display_name ILIKE '%' || $4 || '%')
"""


def _change(now: int | None, then: int | None) -> int | None:
    return None if now is None or then is None else now - then


async def list_creators(
    session: AsyncSession,
    *,
    now: datetime,
    region_code: str | None = None,
    platform: str | None = None,
    status: str | None = None,
    search: str | None = None,
    limit: int = 500,
    offset: int = 0,
) -> list[CreatorRow]:
    """Creators with their latest followers, 24 h / 7 d change, growth and a sparkline: the
    `limit` of them from `offset` on, most followers first."""
    driver = await _driver(session)
    rows = await driver.fetch(
        _LIST, now, region_code, platform, status, search or None, limit, offset
    )
    result = []
    for r in rows:
        followers, day_ago, week_ago, first = r[6], r[9], r[10], r[11]
        base = week_ago if week_ago is not None else first
        growth = (
            round((followers - base) / base * 100, 2)
            if followers is not None and base not in (None, 0)
            else None
        )
        result.append(
            CreatorRow(
                id=r[0],
                platform=r[1],
                handle=r[2],
                display_name=r[3],
                region_code=r[4],
                status=r[5],
                followers=followers,
                change_24h=_change(followers, day_ago),
                change_7d=_change(followers, week_ago),
                growth_7d_pct=growth,
                last_fetched_at=r[7],
                last_error=r[8],
                spark=[int(v) for v in r[12] if v is not None],
            )
        )
    return result


async def get_creator(session: AsyncSession, creator_id: int) -> Creator | None:
    return await session.get(Creator, creator_id)


async def samples(
    session: AsyncSession, creator_id: int, since: datetime | None = None, limit: int = 2000
) -> list[FollowerSample]:
    """A creator's samples, oldest first (the most recent `limit` of them)."""
    query = (
        select(FollowerSample)
        .where(FollowerSample.creator_id == creator_id)
        .order_by(FollowerSample.observed_at.desc())
        .limit(limit)
    )
    if since is not None:
        query = query.where(FollowerSample.observed_at >= since)
    rows = list(await session.scalars(query))
    rows.reverse()
    return rows


async def count_samples(session: AsyncSession, creator_id: int | None = None) -> int:
    query = select(func.count()).select_from(FollowerSample)
    if creator_id is not None:
        query = query.where(FollowerSample.creator_id == creator_id)
    return int(await session.scalar(query) or 0)


async def count_creators(
    session: AsyncSession,
    *,
    region_code: str | None = None,
    platform: str | None = None,
    status: str | None = None,
    search: str | None = None,
) -> int:
    """How many creators `list_creators` would list with these filters (and no limit)."""
    driver = await _driver(session)
    total = await driver.fetchval(_COUNT, region_code, platform, status, search or None)
    return int(total)


async def status_counts(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(select(Creator.status, func.count()).group_by(Creator.status))
    return {status: int(n) for status, n in rows}


async def set_status(
    session: AsyncSession, creator_ids: Sequence[int], status: CreatorStatus, *, actor: str
) -> int:
    """Pause, resume, or reactivate creators (audited). Commits."""
    ids = list(creator_ids)
    if not ids:
        return 0
    result = await session.execute(
        update(Creator)
        .where(Creator.id.in_(ids), Creator.status != status.value)
        .values(status=status.value, updated_at=func.now())
        .returning(Creator.id)
    )
    changed = [row[0] for row in result.all()]
    for creator_id in changed:
        audit.record(
            session,
            actor=actor,
            action=f"status:{status.value}",
            entity="creator",
            entity_id=str(creator_id),
            before=None,
            after={"status": status.value},
        )
    await session.commit()
    return len(changed)


async def region_codes(session: AsyncSession) -> set[str]:
    return set(await session.scalars(select(Region.code)))


def slot_start(when: datetime, slot_s: int) -> datetime:
    """The sampling slot `when` falls in (slots are aligned to the Unix epoch)."""
    stamp = int(when.timestamp())
    return datetime.fromtimestamp(stamp - stamp % slot_s, when.tzinfo) if slot_s > 1 else when


def since(now: datetime, days: float) -> datetime:
    return now - timedelta(days=days)
