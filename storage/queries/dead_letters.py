"""The dead-letter queue: record permanent failures, list them, requeue or drop (audited).

No function commits: the caller owns the transaction (a fetch batch records its letters with
its results; a requeue or a drop commits with its audit rows)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage import permissions
from storage.database import driver
from storage.models import DeadLetter, DeadLetterStatus, Role
from storage.permissions import Actor
from storage.queries import audit

FETCH = "fetch"


@dataclass(frozen=True, slots=True)
class Letter:
    """A failure to record: one row per `dedupe_key`, a repeat counts one more attempt."""

    kind: str
    dedupe_key: str
    error: str
    payload: dict[str, Any]
    creator_id: int | None = None


def fetch_key(creator_id: int) -> str:
    return f"{FETCH}:{creator_id}"


async def record(session: AsyncSession, letters: Sequence[Letter]) -> int:
    """Upsert failures (a requeued letter that fails again is pending again)."""
    if not letters:
        return 0
    rows = [
        {
            "kind": letter.kind,
            "dedupe_key": letter.dedupe_key,
            "creator_id": letter.creator_id,
            "payload": letter.payload,
            "error": letter.error[:4000],
            "status": DeadLetterStatus.PENDING.value,
        }
        for letter in letters
    ]
    stmt = insert(DeadLetter).values(rows)
    stmt = stmt.on_conflict_do_update(
        index_elements=[DeadLetter.dedupe_key],
        set_={
            "error": stmt.excluded.error,
            "payload": stmt.excluded.payload,
            "attempts": DeadLetter.attempts + 1,
            "last_failed_at": func.now(),
            "status": DeadLetterStatus.PENDING.value,
        },
    )
    result = await session.execute(stmt.returning(DeadLetter.id))
    return len(result.all())


async def resolve_creators(session: AsyncSession, creator_ids: Sequence[int]) -> int:
    """A creator fetched fine again: its dead letters are done."""
    if not creator_ids:
        return 0
    # One array parameter, not one bind per id: this runs for every fetch batch.
    conn = await driver(session)
    status = await conn.execute(
        "DELETE FROM dead_letter WHERE creator_id = ANY($1::bigint[])", list(creator_ids)
    )
    return int(status.rsplit(" ", 1)[-1])


async def list_letters(
    session: AsyncSession, *, kind: str | None = None, status: str | None = None, limit: int = 1000
) -> list[DeadLetter]:
    query = select(DeadLetter).order_by(DeadLetter.last_failed_at.desc()).limit(limit)
    if kind:
        query = query.where(DeadLetter.kind == kind)
    if status:
        query = query.where(DeadLetter.status == status)
    return list(await session.scalars(query))


async def count_letters(session: AsyncSession, status: str | None = None) -> int:
    query = select(func.count()).select_from(DeadLetter)
    if status:
        query = query.where(DeadLetter.status == status)
    return int(await session.scalar(query) or 0)


def _snapshot(letter: DeadLetter) -> dict[str, Any]:
    return {
        "kind": letter.kind,
        "dedupe_key": letter.dedupe_key,
        "error": letter.error[:500],
        "attempts": letter.attempts,
        "payload": letter.payload,
    }


async def mark_requeued(
    session: AsyncSession, ids: Sequence[int] | None, *, actor: Actor
) -> list[DeadLetter]:
    """Mark letters requeued (all pending ones when `ids` is None); returns them.

    The caller then enqueues their work; a success deletes the letter, a failure makes it
    pending again with one more attempt.
    """
    permissions.require(actor, Role.EDITOR, "requeue dead letters")
    query = (
        select(DeadLetter)
        .where(DeadLetter.status == DeadLetterStatus.PENDING.value)
        .with_for_update(skip_locked=True)
    )
    if ids is not None:
        query = query.where(DeadLetter.id.in_(list(ids)))
    letters = list(await session.scalars(query))
    if not letters:
        return []
    await session.execute(
        update(DeadLetter)
        .where(DeadLetter.id.in_([letter.id for letter in letters]))
        .values(status=DeadLetterStatus.REQUEUED.value, requeued_at=func.now())
    )
    for letter in letters:
        audit.record(
            session,
            actor=actor,
            action="requeue",
            entity="dead_letter",
            entity_id=str(letter.id),
            before=_snapshot(letter),
            after={"status": DeadLetterStatus.REQUEUED.value},
        )
    await session.flush()
    return letters


async def drop(session: AsyncSession, ids: Sequence[int] | None, *, actor: Actor) -> int:
    """Delete letters (all of them when `ids` is None), keeping a copy in the audit log."""
    permissions.require(actor, Role.EDITOR, "drop dead letters")
    query = select(DeadLetter)
    if ids is not None:
        query = query.where(DeadLetter.id.in_(list(ids)))
    letters = list(await session.scalars(query.with_for_update(skip_locked=True)))
    for letter in letters:
        audit.record(
            session,
            actor=actor,
            action="drop",
            entity="dead_letter",
            entity_id=str(letter.id),
            before=_snapshot(letter),
            after=None,
        )
    if letters:
        await session.execute(
            delete(DeadLetter).where(DeadLetter.id.in_([letter.id for letter in letters]))
        )
    await session.flush()
    return len(letters)
