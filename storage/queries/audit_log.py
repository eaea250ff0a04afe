"""Reading the audit log: who changed what and when, newest first, filtered by who or what.

Writes are storage.queries.audit's (in the edit's own transaction); this module only reads.
Costs: with the indexes of migration 0011_versions, a filter by actor or by entity (kind, id)
is a backwards index scan; a page is `LIMIT/OFFSET` over it (the screen reads a window of a
few hundred rows around what it shows), and the count that sizes the screen's table is one
aggregate over the same index. Unfiltered reads walk the primary key backwards.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AuditEntry


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Entries that match every field given (None: any). `word` matches an actor or an
    entity id exactly (what a person types without saying which)."""

    actor: str | None = None
    entity: str | None = None  # region, post, experiment, ...
    entity_id: str | None = None  # a region code, a post id, an experiment key
    word: str | None = None


def _where(query: Select[tuple[AuditEntry]], where: AuditFilter) -> Select[tuple[AuditEntry]]:
    if where.actor is not None:
        query = query.where(AuditEntry.actor == where.actor)
    if where.entity is not None:
        query = query.where(AuditEntry.entity == where.entity)
    if where.entity_id is not None:
        query = query.where(AuditEntry.entity_id == where.entity_id)
    if where.word is not None:
        query = query.where((AuditEntry.actor == where.word) | (AuditEntry.entity_id == where.word))
    return query


async def list_entries(
    session: AsyncSession, where: AuditFilter, *, offset: int = 0, limit: int = 200
) -> list[AuditEntry]:
    """Matching entries, newest first, from the `offset`-th."""
    query = _where(select(AuditEntry), where).order_by(AuditEntry.id.desc())
    return list(await session.scalars(query.offset(offset).limit(limit)))


async def count_entries(session: AsyncSession, where: AuditFilter) -> int:
    query = _where(select(func.count()).select_from(AuditEntry), where)  # type: ignore[arg-type]
    return int(await session.scalar(query) or 0)


async def latest_change_among(
    session: AsyncSession, entities: list[tuple[str, str]]
) -> AuditEntry | None:
    """The newest audit row of any of these (kind, id) entities: a post and its publications,
    say. One OR of index ranges (ix_audit_log_entity), newest first."""
    if not entities:
        return None
    match = or_(*(and_(AuditEntry.entity == e, AuditEntry.entity_id == i) for e, i in entities))
    query = select(AuditEntry).where(match).order_by(AuditEntry.id.desc()).limit(1)
    return (await session.scalars(query)).first()


async def latest_change(session: AsyncSession, entity: str, entity_id: str) -> AuditEntry | None:
    """The newest audit row of one entity: who changed it last, and when."""
    query = (
        select(AuditEntry)
        .where(AuditEntry.entity == entity, AuditEntry.entity_id == entity_id)
        .order_by(AuditEntry.id.desc())
        .limit(1)
    )
    return (await session.scalars(query)).first()
