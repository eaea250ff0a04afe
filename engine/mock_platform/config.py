"""What the mock platform does wrong on purpose, and how it counts."""

from __future__ import annotations

from pydantic import BaseModel, Field


class MockConfig(BaseModel):
    """Fault injection and limits; every field can be changed at run time (PUT /admin/faults)."""

    error_rate: float = Field(default=0.0, ge=0, le=1, description="share of requests → 503")
    latency_ms: float = Field(default=0.0, ge=0, description="added to every request")
    timeout_rate: float = Field(default=0.0, ge=0, le=1, description="share that hang")
    hang_s: float = Field(default=30.0, ge=0, description="how long a hanging request hangs")
    gone_rate: float = Field(
        default=0.0, ge=0, le=1, description="share of accounts deleted (404), by id hash"
    )
    gone_ids: set[str] = Field(default_factory=set, description="accounts deleted (404)")
    revoked_tokens: set[str] = Field(default_factory=set, description="tokens answered 401")
    rate_limit: int = Field(default=0, ge=0, description="requests per window per token; 0 off")
    rate_window_s: float = Field(default=1.0, gt=0)
    max_batch: int = Field(default=500, ge=1, le=1000)
    slot_s: int = Field(default=60, ge=1, description="stats change once per slot")
    seed: int = 0
    # Media uploads (engine.mock_platform.media, media_graph).
    media_drop_every: int = Field(
        default=0, ge=0, description="every Nth upload chunk loses its connection; 0 off"
    )
    media_chunk_delay_s: float = Field(default=0.0, ge=0, description="each upload chunk's time")
    media_processing_polls: int = Field(
        default=0, ge=0, description="status polls answered 'in progress' before done"
    )
    media_container_error: bool = Field(
        default=False, description="media processing (IG container, X media) ends in failure"
    )
