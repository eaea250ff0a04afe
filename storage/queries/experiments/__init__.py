"""Experiments in Postgres, by concern; import from here (every public name is re-exported).

- `definitions`: validated input, audited edits, status transitions.
- `assignment`: sticky assignments (the api's hot path, one statement).
- `events`: event batches into the day-partitioned event_log (one statement, deduplicated).
- `rollups`: the rollup window, lock, touched days/experiments, daily rows, checksums, run ledger.
- `funnels`: funnel rollups, summed from `funnel_units` (per-unit funnel progress, imported
  as a module).
- `reads`: what the api and console read (rollup tables only, never raw events).

No function here commits: the caller owns the transaction (`insert_events` runs its one
statement in its own transaction, or a savepoint inside the caller's).
"""

from __future__ import annotations

from storage.queries.experiments.assignment import (
    Conn,
    ExperimentDef,
    StoredAssignment,
    assign_unit,
    live_definitions,
)
from storage.queries.experiments.definitions import (
    EVENT_NAME_PATTERN,
    KEY_PATTERN,
    TRANSITIONS,
    WEIGHT_TOLERANCE,
    ExperimentChanged,
    ExperimentError,
    ExperimentInput,
    FunnelInput,
    VariantInput,
    add_variant,
    check_weights,
    create_experiment,
    get_experiment,
    list_experiments,
    set_status,
    set_weights,
    snapshot,
)
from storage.queries.experiments.events import (
    DEDUPE_WINDOW,
    INDEX_PROBES_ONLY,
    insert_events,
)
from storage.queries.experiments.funnels import (
    prune_funnels,
    stored_counts,
    stored_funnels,
    write_funnel,
)
from storage.queries.experiments.reads import (
    DailyRow,
    FunnelRow,
    Summary,
    VariantRow,
    experiment_traffic,
    read_daily,
    read_experiment_rollup,
    read_funnels,
    read_summary,
)
from storage.queries.experiments.rollups import (
    ROLLUP_LOCK,
    ROLLUP_TABLES,
    RollupExperiment,
    Window,
    checksums,
    compute_daily,
    db_now,
    lock_rollups,
    previous_run,
    read_settings,
    recent_runs,
    rollup_experiments_list,
    start_run,
    touched_days,
    touched_experiments,
    write_daily,
)

__all__ = [
    "DEDUPE_WINDOW",
    "EVENT_NAME_PATTERN",
    "INDEX_PROBES_ONLY",
    "KEY_PATTERN",
    "ROLLUP_LOCK",
    "ROLLUP_TABLES",
    "TRANSITIONS",
    "WEIGHT_TOLERANCE",
    "Conn",
    "DailyRow",
    "ExperimentChanged",
    "ExperimentDef",
    "ExperimentError",
    "ExperimentInput",
    "FunnelInput",
    "FunnelRow",
    "RollupExperiment",
    "StoredAssignment",
    "Summary",
    "VariantInput",
    "VariantRow",
    "Window",
    "add_variant",
    "assign_unit",
    "check_weights",
    "checksums",
    "compute_daily",
    "create_experiment",
    "db_now",
    "experiment_traffic",
    "get_experiment",
    "insert_events",
    "list_experiments",
    "live_definitions",
    "lock_rollups",
    "previous_run",
    "prune_funnels",
    "read_daily",
    "read_experiment_rollup",
    "read_funnels",
    "read_settings",
    "read_summary",
    "recent_runs",
    "rollup_experiments_list",
    "set_status",
    "set_weights",
    "snapshot",
    "start_run",
    "stored_counts",
    "stored_funnels",
    "touched_days",
    "touched_experiments",
    "write_daily",
    "write_funnel",
]
