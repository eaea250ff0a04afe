"""The Posts screen's list view: its columns (at 80 columns: id, status, when, views, accounts
and the start of the post) and the cells of one post; rows not read yet show a placeholder."""

from __future__ import annotations

from rich.text import Text

from console.data import publishing as data
from console.screens.post_modals import styled
from console.widgets.virtual_table import Column

LIST_COLUMNS = (
    Column("#", "id", 5),
    Column("Status", "status", 10),
    Column("When (post's tz)", "when", 16),
    Column("Views", "views", 6),
    Column("Accounts", "targets", 24, shrink_to=12),
    Column("Post", "body", 40, shrink_to=16),
)
PLACEHOLDER = (Text("…", style="dim"),)


def post_cells(post: data.PostRow | None) -> tuple[Text | str, ...]:
    if post is None:  # not read yet: the load after the scroll brings it
        return PLACEHOLDER
    return (
        str(post.id),
        styled(post.status),
        post.local_time(),
        compact(post.views),
        post.targets(),
        post.first_line,
    )


def compact(n: int | None) -> str:
    """Views in at most six characters: 999, 12.3k, 4.5M; `?` when none read yet (not 0)."""
    if n is None:
        return "?"
    if n < 10_000:
        return str(n)
    if n < 99_950:  # 99.9k at most: the rounding never makes "100.0k"
        return f"{n / 1000:.1f}k"
    if n < 1_000_000:
        return f"{n // 1000}k"
    return f"{n / 1_000_000:.1f}M"


def post_key(post: data.PostRow | None) -> int | None:
    return post.id if post is not None else None


def post_id(post: data.PostRow) -> int:
    return post.id
