"""The fetch pipeline's batched reads and writes, and the sampling slots.

Every function speaks to asyncpg directly with one array-parameter statement per step, so a
batch of any size costs the same few round trips. No function commits: the caller owns the
transaction (storage/database.py); a fetch job writes a batch's results, dead letters and
ledger counts in one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from storage.database import driver
from storage.models import CreatorStatus


def int_array(values: Sequence[int | None]) -> str:
    """A Postgres bigint[] literal ("{1,2,NULL}"), sent as ONE text parameter and cast in SQL
    (`$1::text::bigint[]`): asyncpg encodes a list element by element with type checks that
    cost more than the rest of the fetch path's Python work."""
    return "{" + ",".join("NULL" if v is None else str(int(v)) for v in values) + "}"


async def due_creators(
    session: AsyncSession, region_code: str, slot: datetime
) -> list[tuple[int, str]]:
    """(id, platform) of the region's active creators not yet checked in this slot."""
    conn = await driver(session)
    rows = await conn.fetch(
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
    conn = await driver(session)
    rows = await conn.fetch(
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
    conn = await driver(session)
    rows = await conn.fetch(
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
) -> WriteReport:
    """A batch's results: samples (idempotent per slot), latest stats, statuses. The caller
    writes them in one transaction with the batch's dead letters and ledger counts.

    A 304 writes no sample: only the creator's check time moves (one statement for all of
    the batch's 304s).
    """
    conn = await driver(session)
    report = WriteReport(not_modified=len(not_modified), status_changed=len(status_changes))
    if samples:
        ids = int_array([s.creator_id for s in samples])
        followers = int_array([s.followers for s in samples])
        following = int_array([s.following for s in samples])
        posts = int_array([s.posts for s in samples])
        views = int_array([s.views for s in samples])
        status = await conn.execute(_INSERT_SAMPLES, ids, slot, followers, following, posts, views)
        report.samples_written = int(status.rsplit(" ", 1)[-1])
        status = await conn.execute(
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
        await conn.execute(_UPDATE_NOT_MODIFIED, list(not_modified), fetched_at, slot)
    if status_changes:
        await conn.execute(
            _UPDATE_STATUS,
            [c.creator_id for c in status_changes],
            fetched_at,
            [c.status.value for c in status_changes],
            [c.error[:2000] for c in status_changes],
        )
    return report


async def record_fetch_errors(session: AsyncSession, errors: dict[int, str]) -> None:
    """Note a transient error on creators (status unchanged)."""
    if not errors:
        return
    conn = await driver(session)
    await conn.execute(
        "UPDATE creator AS c SET last_error = u.error FROM unnest($1::bigint[], $2::text[]) "
        "AS u(id, error) WHERE c.id = u.id",
        list(errors),
        [e[:2000] for e in errors.values()],
    )


def slot_start(when: datetime, slot_s: int) -> datetime:
    """The sampling slot `when` falls in (slots are aligned to the Unix epoch)."""
    stamp = int(when.timestamp())
    return datetime.fromtimestamp(stamp - stamp % slot_s, when.tzinfo) if slot_s > 1 else when


def since(now: datetime, days: float) -> datetime:
    return now - timedelta(days=days)
