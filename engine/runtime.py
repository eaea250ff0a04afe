"""What every job and loop of an engine process shares: settings, database, Redis, identity."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field

from arq.connections import ArqRedis

from engine import queues
from storage.database import Database
from storage.settings import Settings


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class Runtime:
    settings: Settings
    db: Database
    redis: ArqRedis
    name: str = field(default_factory=worker_name)

    @classmethod
    async def connect(cls, settings: Settings, retries: int = 5) -> Runtime:
        redis = await queues.connect(settings, retries=retries)
        return cls(settings=settings, db=Database(settings), redis=redis)

    async def close(self) -> None:
        await self.db.dispose()
        await self.redis.aclose()
