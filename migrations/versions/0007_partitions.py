"""Partition event_log by day and follower_sample by month, with DEFAULT partitions.

Works on a populated database: each table is renamed aside, its partitioned successor is
created with partitions covering the old rows' range up to a few partitions ahead, the rows
are copied over (routed to their partitions) and the old table is dropped, all in the
migration's transaction. Costs one pass over each table (minutes at hundreds of millions of
rows: plan the release's downtime accordingly, the api and engine must be stopped).

Keys must include the partition key: event_log's primary key becomes (event_id, occurred_at);
ingestion still deduplicates by event id (see storage/queries/experiments.py insert_events).

Revision ID: 0007_partitions
Revises: 0002_creators, 0006_alert_silences
Create Date: 2026-12-02
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from storage import partitions as p

revision = "0007_partitions"
down_revision = ("0002_creators", "0006_alert_silences")
branch_labels = None
depends_on = None

_EVENT_COLUMNS = (
    "event_id uuid NOT NULL, unit_id varchar(200) NOT NULL, name varchar(100) NOT NULL, "
    "occurred_at timestamptz NOT NULL, client_ts timestamptz NOT NULL, "
    "received_at timestamptz NOT NULL, properties jsonb NOT NULL, assignments jsonb NOT NULL"
)
_SAMPLE_COLUMNS = (
    "creator_id bigint NOT NULL, observed_at timestamptz NOT NULL, followers bigint, "
    "following bigint, posts bigint, views bigint"
)


def _range(table: str, column: str) -> tuple[datetime | None, datetime | None]:
    row = (
        op.get_bind()
        .execute(sa.text(f"SELECT min({column}), max({column}) FROM {table}"))  # noqa: S608
        .one()
    )
    return row[0], row[1]


def _partition(table: p.PartitionedTable, old: str) -> None:
    """Partitions for the old rows' range through `ahead` partitions past now, the DEFAULT,
    then the rows."""
    now = datetime.now(UTC)
    first, last = _range(old, table.column)
    start = min(first, now) if first is not None else now
    end = max(last, now) if last is not None else now
    ahead = end
    for _ in range(table.ahead):
        ahead = p.following(table, p.floor(table, ahead))
    for begin in p.starts_between(table, start, ahead):
        op.execute(p.create_sql(table, begin))
    op.execute(f"CREATE TABLE {table.default} PARTITION OF {table.name} DEFAULT")
    op.execute(f"INSERT INTO {table.name} SELECT * FROM {old}")  # noqa: S608
    op.execute(f"DROP TABLE {old}")


def upgrade() -> None:
    # --- event_log: daily ----------------------------------------------------------------------
    op.execute("DROP INDEX IF EXISTS ix_event_log_occurred_at")
    op.execute("DROP INDEX IF EXISTS ix_event_log_received_at")
    op.execute("ALTER TABLE event_log RENAME TO event_log_unpartitioned")
    op.execute(
        "ALTER TABLE event_log_unpartitioned RENAME CONSTRAINT pk_event_log TO pk_event_log_old"
    )
    op.execute(
        f"CREATE TABLE event_log ({_EVENT_COLUMNS}, "
        "CONSTRAINT pk_event_log PRIMARY KEY (event_id, occurred_at)) "
        "PARTITION BY RANGE (occurred_at)"
    )
    # Both times grow with insertion order inside a day: BRIN costs almost nothing on ingest and
    # lets the rollups' `received_at > watermark` scan skip a partition's old blocks.
    op.execute("CREATE INDEX ix_event_log_occurred_at ON event_log USING brin (occurred_at)")
    op.execute("CREATE INDEX ix_event_log_received_at ON event_log USING brin (received_at)")
    _partition(p.EVENTS, "event_log_unpartitioned")

    # --- follower_sample: monthly --------------------------------------------------------------
    op.execute("ALTER TABLE follower_sample RENAME TO follower_sample_unpartitioned")
    op.execute(
        "ALTER TABLE follower_sample_unpartitioned "
        "RENAME CONSTRAINT pk_follower_sample TO pk_follower_sample_old"
    )
    op.execute(
        "ALTER TABLE follower_sample_unpartitioned "
        "DROP CONSTRAINT fk_follower_sample_creator_id_creator"
    )
    op.execute(
        f"CREATE TABLE follower_sample ({_SAMPLE_COLUMNS}, "
        "CONSTRAINT pk_follower_sample PRIMARY KEY (creator_id, observed_at), "
        "CONSTRAINT fk_follower_sample_creator_id_creator FOREIGN KEY (creator_id) "
        "REFERENCES creator (id) ON DELETE CASCADE) PARTITION BY RANGE (observed_at)"
    )
    _partition(p.SAMPLES, "follower_sample_unpartitioned")

    # What retention has dropped: rollups never recompute (and so never erase) the days before.
    op.create_table(
        "retention_horizon",
        sa.Column("table_name", sa.String(64), nullable=False),
        sa.Column("dropped_before", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("table_name", name="pk_retention_horizon"),
    )
    _rollup_days()
    _series()


def _rollup_days() -> None:
    """Day-grained experiment rollup state (storage/models/rollup_days.py)."""
    op.create_table(
        "rollup_experiment_day",
        sa.Column("window_days", sa.Integer(), nullable=False),
        sa.Column("experiment_id", sa.BigInteger(), nullable=False),
        sa.Column("variant_key", sa.String(100), nullable=False),
        sa.Column("assigned_day", sa.Date(), nullable=False),
        sa.Column("event_day", sa.Date(), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "window_days",
            "experiment_id",
            "variant_key",
            "assigned_day",
            "event_day",
            name="pk_rollup_experiment_day",
        ),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiment.id"],
            ondelete="CASCADE",
            name="fk_rollup_experiment_day_experiment_id_experiment",
        ),
    )
    op.create_table(
        "rollup_experiment_unit",
        sa.Column("window_days", sa.Integer(), nullable=False),
        sa.Column("experiment_id", sa.BigInteger(), nullable=False),
        sa.Column("unit_id", sa.String(200), nullable=False),
        sa.Column("variant_key", sa.String(100), nullable=False),
        sa.Column("first_day", sa.Date(), nullable=False),
        # No foreign key: a full run inserts a whole cohort, and a per-row check would double
        # its cost; rows of a deleted experiment are inert (ids are never reused).
        sa.PrimaryKeyConstraint(
            "window_days", "experiment_id", "unit_id", name="pk_rollup_experiment_unit"
        ),
    )


def _series() -> None:
    """Downsampled follower series (storage/queries/series.py): charts never read raw samples
    past a couple of days, and the daily series outlives the samples' retention."""
    op.create_table(
        "follower_series",
        sa.Column("creator_id", sa.BigInteger(), nullable=False),
        sa.Column("resolution", sa.String(8), nullable=False),
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        sa.Column("followers", sa.BigInteger(), nullable=True),
        sa.Column("following", sa.BigInteger(), nullable=True),
        sa.Column("posts", sa.BigInteger(), nullable=True),
        sa.Column("views", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("creator_id", "resolution", "bucket", name="pk_follower_series"),
        sa.ForeignKeyConstraint(
            ["creator_id"],
            ["creator.id"],
            ondelete="CASCADE",
            name="fk_follower_series_creator_id_creator",
        ),
        sa.CheckConstraint("resolution in ('hour', 'day')", name="ck_follower_series_resolution"),
    )
    op.create_table(
        "downsample_state",
        sa.Column("resolution", sa.String(8), nullable=False),
        sa.Column("done_until", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("resolution", name="pk_downsample_state"),
    )


def _unpartition(name: str, columns: str, key: str, extra: str = "") -> None:
    op.execute(f"ALTER TABLE {name} RENAME TO {name}_partitioned")
    op.execute(f"ALTER TABLE {name}_partitioned RENAME CONSTRAINT pk_{name} TO pk_{name}_old")
    if extra:
        op.execute(f"ALTER TABLE {name}_partitioned DROP CONSTRAINT fk_{name}_creator_id_creator")
    op.execute(f"CREATE TABLE {name} ({columns}, CONSTRAINT pk_{name} PRIMARY KEY ({key}){extra})")
    op.execute(f"INSERT INTO {name} SELECT * FROM {name}_partitioned ON CONFLICT DO NOTHING")  # noqa: S608
    op.execute(f"DROP TABLE {name}_partitioned")


def downgrade() -> None:
    op.drop_table("downsample_state")
    op.drop_table("follower_series")
    op.drop_table("rollup_experiment_unit")
    op.drop_table("rollup_experiment_day")
    op.drop_table("retention_horizon")
    op.execute("DROP INDEX IF EXISTS ix_event_log_occurred_at")
    op.execute("DROP INDEX IF EXISTS ix_event_log_received_at")
    _unpartition("event_log", _EVENT_COLUMNS, "event_id")
    op.execute("CREATE INDEX ix_event_log_occurred_at ON event_log USING brin (occurred_at)")
    op.execute("CREATE INDEX ix_event_log_received_at ON event_log USING brin (received_at)")
    _unpartition(
        "follower_sample",
        _SAMPLE_COLUMNS,
        "creator_id, observed_at",
        ", CONSTRAINT fk_follower_sample_creator_id_creator FOREIGN KEY (creator_id) "
        "REFERENCES creator (id) ON DELETE CASCADE",
    )
