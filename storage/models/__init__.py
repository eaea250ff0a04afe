"""Database models, one module per domain, gathered here so Alembic sees one metadata."""

from storage.models.audit import AuditEntry
from storage.models.base import Base
from storage.models.regions import CatchupPolicy, OverlapPolicy, Region
from storage.models.runs import JobRun, RunStatus

__all__ = [
    "AuditEntry",
    "Base",
    "CatchupPolicy",
    "JobRun",
    "OverlapPolicy",
    "Region",
    "RunStatus",
]
