"""Creators, by concern: `importing` (validated input, bulk upserts, history), `fetch` (the
fetch pipeline's batched reads and writes, sampling slots), `batches` (fetch batches and their
totals for the run ledger), `listing` (the console's reads) and `status` (audited edits).

Callers use `from storage.queries import creators` and `creators.<name>`: every public name is
re-exported here. No function commits: the caller owns the transaction (storage/database.py).
"""

from storage.queries.creators.batches import (
    BatchTotals,
    add_batch_counts,
    batch_totals,
    finished_batches,
    merge_run_counts,
)
from storage.queries.creators.fetch import (
    FetchTarget,
    SampleRow,
    StatusChange,
    WriteReport,
    due_creators,
    due_creators_of,
    int_array,
    load_for_fetch,
    record_fetch_errors,
    since,
    slot_start,
    write_fetch_results,
)
from storage.queries.creators.importing import (
    CreatorInput,
    count_external_ids,
    ids_by_external,
    insert_history,
    upsert_creators,
)
from storage.queries.creators.listing import (
    CreatorRow,
    count_creators,
    count_samples,
    get_creator,
    list_creators,
    region_codes,
    samples,
    status_counts,
)
from storage.queries.creators.status import set_status

__all__ = [
    "BatchTotals",
    "CreatorInput",
    "CreatorRow",
    "FetchTarget",
    "SampleRow",
    "StatusChange",
    "WriteReport",
    "add_batch_counts",
    "batch_totals",
    "count_creators",
    "count_external_ids",
    "count_samples",
    "due_creators",
    "due_creators_of",
    "finished_batches",
    "get_creator",
    "ids_by_external",
    "insert_history",
    "int_array",
    "list_creators",
    "load_for_fetch",
    "merge_run_counts",
    "record_fetch_errors",
    "region_codes",
    "samples",
    "set_status",
    "since",
    "slot_start",
    "status_counts",
    "upsert_creators",
    "write_fetch_results",
]
