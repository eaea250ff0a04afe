"""Tracking credentials from the encrypted store (storage.queries.tracking_credentials), for a
deployment that keeps YOUTUBE_API_KEY, X_BEARER_TOKEN, INSTAGRAM_ACCESS_TOKEN or
INSTAGRAM_USER_ID there rather than in the environment. The environment wins.

Read once when the engine starts (`adopt`), before any worker builds its adapters, so the tick
(which platforms are configured) and the fetch workers (the adapters) agree: a credential set or
changed later takes effect at the next engine start.
"""

from __future__ import annotations

from engine import logs
from engine.runtime import Runtime
from storage.crypto import EncryptionKeyError, cipher
from storage.queries.tracking_credentials import read_credentials

log = logs.get("engine.platforms.stored_credentials")


async def stored_for_unset(rt: Runtime) -> dict[str, str]:
    """Stored credentials the environment leaves unset (decrypted; empty without a key)."""
    try:
        box = cipher(rt.settings)
    except EncryptionKeyError:
        return {}
    async with rt.db.session() as session:
        stored = await read_credentials(session, box)
    tracking = rt.settings.tracking
    return {name: value for name, value in stored.items() if getattr(tracking, name) is None}


async def adopt(rt: Runtime) -> list[str]:
    """Make stored credentials this process's tracking settings; returns their names (never
    the values). A failure leaves the environment's settings as they are."""
    try:
        found = await stored_for_unset(rt)
    except Exception as exc:
        log.warning("tracking.stored_credentials_unreadable", error=repr(exc))
        return []
    if found:
        # Jobs and workers read rt.settings.tracking; they are built after this.
        tracking = rt.settings.tracking
        merged = type(tracking).model_validate({**tracking.model_dump(), **found})
        rt.settings = rt.settings.model_copy(update={"tracking": merged})
        log.info("tracking.stored_credentials", names=sorted(found))
    return sorted(found)
