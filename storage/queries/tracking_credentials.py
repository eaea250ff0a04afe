"""Tracking credentials in the encrypted store: set, delete, read all, and re-encrypt on key
rotation (storage.queries.key_check.rotate_tokens). Never commits; values never in audit rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage import permissions
from storage.crypto import TokenCipher, TokenUnreadable
from storage.models import TRACKING_CREDENTIALS, Role, TrackingCredential
from storage.permissions import Actor, actor_name
from storage.queries import audit


class UnknownCredential(ValueError):
    """Not a credential the store keeps (the message lists those it does)."""


def check_name(name: str) -> str:
    key = name.strip().lower()
    if key not in TRACKING_CREDENTIALS:
        known = ", ".join(n.upper() for n in TRACKING_CREDENTIALS)
        raise UnknownCredential(f"{name!r} is not a tracking credential; one of {known}")
    return key


async def set_credential(
    session: AsyncSession, box: TokenCipher, name: str, value: str, actor: Actor
) -> None:
    permissions.require(actor, Role.ADMIN, "change tracking credentials")
    key = check_name(name)
    stmt = insert(TrackingCredential).values(
        name=key, value_encrypted=box.encrypt(value), updated_by=actor_name(actor)
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[TrackingCredential.name],
            set_={
                "value_encrypted": stmt.excluded.value_encrypted,
                "updated_by": actor_name(actor),
                "updated_at": func.now(),
            },
        )
    )
    audit.record(
        session,
        actor=actor,
        action="tracking_credential.set",
        entity="tracking_credential",
        entity_id=key,
        before=None,
        after=None,
    )


async def delete_credential(session: AsyncSession, name: str, actor: Actor) -> bool:
    permissions.require(actor, Role.ADMIN, "change tracking credentials")
    key = check_name(name)
    gone = await session.scalar(
        delete(TrackingCredential)
        .where(TrackingCredential.name == key)
        .returning(TrackingCredential.name)
    )
    if gone is not None:
        audit.record(
            session,
            actor=actor,
            action="tracking_credential.delete",
            entity="tracking_credential",
            entity_id=key,
            before=None,
            after=None,
        )
    return gone is not None


async def stored_names(session: AsyncSession) -> list[str]:
    return list(await session.scalars(select(TrackingCredential.name).order_by("name")))


async def read_credentials(session: AsyncSession, box: TokenCipher) -> dict[str, str]:
    """Every stored credential, decrypted; one that no key reads is left out."""
    found: dict[str, str] = {}
    for name, value in (
        await session.execute(select(TrackingCredential.name, TrackingCredential.value_encrypted))
    ).all():
        try:
            found[name] = box.decrypt(value)
        except TokenUnreadable:
            continue
    return found


@dataclass
class CredentialRotation:
    rotated: list[dict[str, object]] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)


async def rotation(session: AsyncSession, box: TokenCipher) -> CredentialRotation:
    """Each credential re-encrypted under `box`'s first key, not yet written."""
    plan = CredentialRotation()
    rows = await session.execute(
        select(TrackingCredential.name, TrackingCredential.value_encrypted).with_for_update()
    )
    for name, value in rows.all():
        try:
            plan.rotated.append({"name": name, "value_encrypted": box.rotate(value)})
        except TokenUnreadable:
            plan.unreadable.append(name)
    return plan


async def write_rotation(session: AsyncSession, plan: CredentialRotation) -> int:
    """Write a rotation; unreadable credentials are deleted (set them again). Returns count."""
    for values in plan.rotated:
        await session.execute(
            update(TrackingCredential)
            .where(TrackingCredential.name == values["name"])
            .values(value_encrypted=values["value_encrypted"])
        )
    if plan.unreadable:
        await session.execute(
            delete(TrackingCredential).where(TrackingCredential.name.in_(plan.unreadable))
        )
    return len(plan.rotated)
