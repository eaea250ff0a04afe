"""Request and response bodies of the API, with the limits the OpenAPI document states."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from storage.queries.experiments import EVENT_NAME_PATTERN, KEY_PATTERN

MAX_BATCH_EVENTS = 1000
MAX_EVENT_BYTES = 8192  # one event's properties, serialised as JSON
MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_UNIT_ID = 200
MAX_EXPERIMENT_KEYS = 100
# 100 keys of at most 100 characters and a unit id, escaped, fit many times over.
MAX_ASSIGNMENT_BODY_BYTES = 64 * 1024
# Corrected event times may lie this far ahead of the server clock, or this far behind it.
MAX_FUTURE_S = 300
MAX_AGE_DAYS = 30
MAX_WINDOW_DAYS = 366


def _storable(value: str) -> str:
    """Postgres text holds neither NUL nor lone surrogates: refuse them here, not with a 500."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("must be valid Unicode (no lone surrogates)") from exc
    return value


StorableStr = Annotated[str, AfterValidator(_storable)]
NO_NUL = r"^[^\u0000]*$"
# An event's properties as the OpenAPI document states them: any JSON without NUL characters
# (Postgres' jsonb cannot hold them; `routes_events._check` refuses them). Put into the
# document by `app.fastapi_app`'s openapi() (pydantic would resolve the recursive reference).
PROPERTY_VALUE_REF = "#/components/schemas/PropertyValue"
PROPERTIES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "propertyNames": {"pattern": NO_NUL},
    "additionalProperties": {"$ref": PROPERTY_VALUE_REF},
}
# Each keyword applies to its own type only, so no `anyOf` (whose negation a fuzzer can get
# wrong: an array turned into an object is still a valid value).
PROPERTY_VALUE_SCHEMA: dict[str, Any] = {
    "description": "any JSON value without NUL characters",
    "pattern": NO_NUL,
    "items": {"$ref": PROPERTY_VALUE_REF},
    "propertyNames": {"pattern": NO_NUL},
    "additionalProperties": {"$ref": PROPERTY_VALUE_REF},
}
UNIT_ID_FIELD = Field(
    min_length=1,
    max_length=MAX_UNIT_ID,
    description="device id or user id (opaque string, no NUL characters)",
    # Documents what `_storable` enforces (with a clearer message than a pattern mismatch).
    json_schema_extra={"pattern": NO_NUL.replace("*", "+")},
)
ExperimentKey = Annotated[
    str, Field(pattern=KEY_PATTERN, description="an experiment key (at most 100 characters)")
]


class AssignmentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    unit_id: StorableStr = UNIT_ID_FIELD
    experiments: list[ExperimentKey] | None = Field(
        default=None,
        max_length=MAX_EXPERIMENT_KEYS,
        description=f"at most {MAX_EXPERIMENT_KEYS} experiment keys to assign; omitted: every "
        "running experiment",
    )


class AssignedVariant(BaseModel):
    experiment: str
    variant: str
    bucket: float = Field(description="GrowthBook hash bucket in [0, 1)")
    new: bool = Field(description="assigned by this request (false: the stored, sticky one)")


class SkippedExperiment(BaseModel):
    experiment: str
    reason: str


class AssignmentResponse(BaseModel):
    unit_id: str
    assignments: list[AssignedVariant]
    skipped: list[SkippedExperiment]


class EventIn(BaseModel):
    """One event; `timestamp` is the device clock (ISO 8601 with offset, or epoch)."""

    model_config = ConfigDict(extra="forbid")

    event_id: UUID = Field(description="client-generated UUID; repeats are ignored (dedupe)")
    unit_id: StorableStr = UNIT_ID_FIELD
    name: str = Field(pattern=EVENT_NAME_PATTERN, max_length=100)
    timestamp: AwareDatetime = Field(
        description=f"after skew correction, at most {MAX_AGE_DAYS} days before and "
        f"{MAX_FUTURE_S} s after the server's clock; an event outside that window is refused"
    )
    properties: dict[str, Any] = Field(
        default_factory=dict,
        description=f"free-form; at most {MAX_EVENT_BYTES} bytes as JSON, no NUL characters",
    )


class EventBatch(BaseModel):
    """A batch of events; `sent_at` is the device clock when the batch was sent."""

    model_config = ConfigDict(extra="forbid")

    sent_at: AwareDatetime | None = Field(
        default=None,
        description="device clock at send time: event times are shifted by (server now - sent_at)",
    )
    events: list[Any] = Field(
        min_length=1,
        max_length=MAX_BATCH_EVENTS,
        description=f"1 to {MAX_BATCH_EVENTS} events (see EventIn); the body is at most "
        f"{MAX_BODY_BYTES} bytes",
    )


class RefusedEvent(BaseModel):
    index: int
    event_id: str | None
    reason: str


class EventsResponse(BaseModel):
    received: int
    stored: int = Field(description="new events written")
    duplicates: int = Field(description="valid events whose id was already stored")
    refused: list[RefusedEvent]
    skew_seconds: float = Field(description="correction applied to every event time")


class ErrorBody(BaseModel):
    detail: Any


class HealthResponse(BaseModel):
    status: str
    database: str
    redis: str


class SummaryResponse(BaseModel):
    experiments: dict[str, int]
    days: int
    first_day: date | None
    last_day: date | None
    events: int
    event_names: int
    last_rollup_at: datetime | None


class DailyPoint(BaseModel):
    day: date
    event_name: str
    events: int
    units: int


class DailyResponse(BaseModel):
    window_days: int
    start: date
    end: date
    rows: list[DailyPoint]


class Interval(BaseModel):
    low: float
    high: float


class VariantMetrics(BaseModel):
    variant: str
    weight: float
    units: int
    conversions: int
    events: int
    rate: float | None
    abs_uplift: float | None
    abs_ci95: Interval | None
    rel_uplift: float | None
    rel_ci95: Interval | None
    p_value: float | None
    chance_to_beat_control: float | None
    verdict: str


class SrmResult(BaseModel):
    chi2: float
    p_value: float
    flagged: bool


class ExperimentMetrics(BaseModel):
    experiment: str
    name: str
    status: str
    primary_metric: str
    window_days: int
    window_end: date
    variants: list[VariantMetrics]
    srm: SrmResult | None
    enough_data: bool
    leader: str | None
    notes: list[str]


class ExperimentsMetricsResponse(BaseModel):
    window_days: int
    experiments: list[ExperimentMetrics]


class FunnelStep(BaseModel):
    step: int
    name: str
    units: int
    conversion_from_first: float | None


class FunnelVariant(BaseModel):
    variant: str
    steps: list[FunnelStep]


class FunnelMetrics(BaseModel):
    experiment: str
    funnel: str
    window_end: date
    variants: list[FunnelVariant]


class FunnelsResponse(BaseModel):
    window_days: int
    funnels: list[FunnelMetrics]
