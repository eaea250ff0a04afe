"""What a region tick does once it owns its fire time: refresh the region's creators.

Creator tracking (fetch jobs per platform) plugs in here; until a region has creators the
tick's work is empty and its counts say so.
"""

from __future__ import annotations

from typing import Any

from engine.runtime import Runtime
from storage.models import Region


async def refresh_region(rt: Runtime, region: Region, run_id: int) -> dict[str, Any]:
    return {"creators_due": 0}
