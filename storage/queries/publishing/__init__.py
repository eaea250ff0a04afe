"""Posts, connections and publications: validated input, the lifecycle, the engine's claims, reads.

    inputs       pydantic input models, per-platform body limits, typed times (pure)
    connections  connected accounts: save, list, needs-reauth
    lifecycle    create / schedule / cancel / retry / resolve; a post's derived status
    claims       the engine claims publications (one, or a batch in one statement), takes over
    finish       how an attempt ends (published, failed, unknown, retry later, released)
    reads        what the queue owes (reconcile) and the console's lists and counts

The transaction rule: query functions never commit. The caller (a job, the console's data
module, the CLI) opens the transaction around what must be atomic
(`async with db.transaction() as session:`).

The named exception is `autocommit(engine)`: the publish job's hot state changes (claim,
claim_batch, finish, release, save_checkpoint) are each ONE statement (CTEs), atomic on their
own, so they run on an autocommit connection: one round trip instead of BEGIN/statement/COMMIT.
Two of them take a short transaction of their own because they need a row lock held across two
statements: `_refresh_locked` (a post with several publications recomputes its status under the
post's lock) in `finish`.

Every change to a publication's place in the queue bumps its `generation` and returns the jobs
the caller must enqueue or remove (`JobChange`); the queue follows Postgres, never the other way.
"""

from storage.queries.publishing.claims import (
    Claimed,
    Work,
    autocommit,
    claim,
    claim_batch,
    load_work,
    save_checkpoint,
    take_over,
)
from storage.queries.publishing.connections import (
    get_connection,
    list_connections,
    mark_needs_reauth,
    save_connection,
)
from storage.queries.publishing.finish import (
    AttemptResult,
    Done,
    mark_failed,
    mark_published,
    mark_published_many,
    mark_unknown,
    release,
    release_many,
    retry_later,
)
from storage.queries.publishing.inputs import (
    BODY_LIMITS,
    PAST_TOLERANCE,
    ConnectionInput,
    PostInput,
    PublishingError,
    parse_local_time,
    zone,
)
from storage.queries.publishing.lifecycle import (
    JobChange,
    JobRef,
    PostChanged,
    cancel_post,
    create_post,
    derive_post_status,
    describe_post,
    refresh_post_status,
    resolve_unknown,
    retry_publication,
    schedule_post,
)
from storage.queries.publishing.reads import (
    Pending,
    PostRow,
    attempts_of,
    count_posts,
    current_generations,
    list_posts,
    needing_attention,
    pending_publications,
    status_counts,
)

__all__ = [
    "BODY_LIMITS",
    "PAST_TOLERANCE",
    "AttemptResult",
    "Claimed",
    "ConnectionInput",
    "Done",
    "JobChange",
    "JobRef",
    "Pending",
    "PostChanged",
    "PostInput",
    "PostRow",
    "PublishingError",
    "Work",
    "attempts_of",
    "autocommit",
    "cancel_post",
    "claim",
    "claim_batch",
    "count_posts",
    "create_post",
    "current_generations",
    "derive_post_status",
    "describe_post",
    "get_connection",
    "list_connections",
    "list_posts",
    "load_work",
    "mark_failed",
    "mark_needs_reauth",
    "mark_published",
    "mark_published_many",
    "mark_unknown",
    "needing_attention",
    "parse_local_time",
    "pending_publications",
    "refresh_post_status",
    "release",
    "release_many",
    "resolve_unknown",
    "retry_later",
    "retry_publication",
    "save_checkpoint",
    "save_connection",
    "schedule_post",
    "status_counts",
    "take_over",
    "zone",
]
