"""The audit log: who changed what, written in the same transaction as the change.

Every row names its actor: the operator's name (storage.permissions.Operator) or, for a process
acting on its own, the string it passed.
"""

from __future__ import annotations

import getpass
import os
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AuditEntry
from storage.permissions import Actor, actor_name


def current_actor() -> str:
    """The OS user at the keyboard (over SSH too), as the audit log's `who`."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


def record(
    session: AsyncSession,
    *,
    actor: Actor,
    action: str,
    entity: str,
    entity_id: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    session.add(
        AuditEntry(
            actor=actor_name(actor),
            action=action,
            entity=entity,
            entity_id=entity_id,
            before=before,
            after=after,
        )
    )


async def record_action(
    session: AsyncSession,
    *,
    actor: Actor,
    action: str,
    entity: str,
    entity_id: str,
    details: dict[str, Any] | None = None,
) -> None:
    """Audit an operator action that changes no row (e.g. a console run-now). The caller
    commits."""
    record(
        session,
        actor=actor,
        action=action,
        entity=entity,
        entity_id=entity_id,
        before=None,
        after=details,
    )
    await session.flush()
