"""Database models, one module per domain, gathered here so Alembic sees one metadata."""

from storage.models.alerts import AlertSilence
from storage.models.audit import AuditEntry
from storage.models.base import Base
from storage.models.creators import (
    Creator,
    CreatorStatus,
    FetchBatch,
    FollowerSample,
    TrackedPlatform,
)
from storage.models.credentials import TRACKING_CREDENTIALS, TrackingCredential
from storage.models.dead_letters import DeadLetter, DeadLetterStatus
from storage.models.experiments import (
    Assignment,
    DailyRollup,
    Event,
    Experiment,
    ExperimentFunnel,
    ExperimentRollup,
    ExperimentStatus,
    ExperimentVariant,
    FunnelRollup,
    RollupRun,
)
from storage.models.keys import KeyCheck
from storage.models.operators import Operator, Role, Team, TeamMember
from storage.models.post_metrics import PostMetric
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
from storage.models.retention import RetentionHorizon
from storage.models.rollup_days import (
    ExperimentDayRollup,
    ExperimentFirstsRollup,
    FunnelUnitRollup,
)
from storage.models.runs import JobRun, RunStatus
from storage.models.series import DownsampleState, FollowerSeries

__all__ = [
    "TRACKING_CREDENTIALS",
    "AlertSilence",
    "Assignment",
    "AttemptOutcome",
    "AuditEntry",
    "Base",
    "CatchupPolicy",
    "Connection",
    "ConnectionStatus",
    "Creator",
    "CreatorStatus",
    "DailyRollup",
    "DeadLetter",
    "DeadLetterStatus",
    "DownsampleState",
    "Event",
    "Experiment",
    "ExperimentDayRollup",
    "ExperimentFirstsRollup",
    "ExperimentFunnel",
    "ExperimentRollup",
    "ExperimentStatus",
    "ExperimentVariant",
    "FetchBatch",
    "FollowerSample",
    "FollowerSeries",
    "FunnelRollup",
    "FunnelUnitRollup",
    "JobRun",
    "KeyCheck",
    "Operator",
    "OverlapPolicy",
    "Platform",
    "Post",
    "PostMetric",
    "PostStatus",
    "Publication",
    "PublicationAttempt",
    "PublicationStatus",
    "Region",
    "RetentionHorizon",
    "Role",
    "RollupRun",
    "RunStatus",
    "Team",
    "TeamMember",
    "TrackedPlatform",
    "TrackingCredential",
]
