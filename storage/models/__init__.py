"""Database models, one module per domain, gathered here so Alembic sees one metadata."""

from storage.models.audit import AuditEntry
from storage.models.base import Base
from storage.models.creators import (
    Creator,
    CreatorStatus,
    FetchBatch,
    FollowerSample,
    TrackedPlatform,
)
from storage.models.dead_letters import DeadLetter, DeadLetterStatus
from storage.models.publishing import (
    AttemptOutcome,
    Connection,
    ConnectionStatus,
    Platform,
    Post,
    PostStatus,
    Publication,
    PublicationAttempt,
    PublicationStatus,
)
from storage.models.regions import CatchupPolicy, OverlapPolicy, Region
from storage.models.runs import JobRun, RunStatus

__all__ = [
    "AttemptOutcome",
    "AuditEntry",
    "Base",
    "CatchupPolicy",
    "Connection",
    "ConnectionStatus",
    "Creator",
    "CreatorStatus",
    "DeadLetter",
    "DeadLetterStatus",
    "FetchBatch",
    "FollowerSample",
    "JobRun",
    "OverlapPolicy",
    "Platform",
    "Post",
    "PostStatus",
    "Publication",
    "PublicationAttempt",
    "PublicationStatus",
    "Region",
    "RunStatus",
    "TrackedPlatform",
]
