"""Audited status edits of creators (pause, resume, reactivate).

No function commits: the caller owns the transaction (storage/database.py), so the status
change and its audit rows commit together.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage import permissions
from storage.models import Creator, CreatorStatus, Role
from storage.permissions import Actor
from storage.queries import audit


async def set_status(
    session: AsyncSession, creator_ids: Sequence[int], status: CreatorStatus, *, actor: Actor
) -> int:
    """Pause, resume, or reactivate creators, with an audit row per creator changed."""
    permissions.require(actor, Role.EDITOR, "change creators")
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
    await session.flush()
    return len(changed)
