"""The Posts screen's list view: its columns (at 80 columns: id, status, when, accounts and the
start of the post) and the cells of one post; rows not read yet show a placeholder."""

from __future__ import annotations

from rich.text import Text

from console.data import publishing as data
from console.screens.post_modals import styled
from console.widgets.virtual_table import Column

LIST_COLUMNS = (
    Column("#", "id", 5),
    Column("Status", "status", 10),
    Column("When (post's tz)", "when", 16),
    Column("Accounts", "targets", 24),
    Column("Post", "body", 40),
)
PLACEHOLDER = (Text("…", style="dim"),)


def post_cells(post: data.PostRow | None) -> tuple[Text | str, ...]:
    if post is None:  # not read yet: the load after the scroll brings it
        return PLACEHOLDER
    return (str(post.id), styled(post.status), post.local_time(), post.targets(), post.first_line)


def post_key(post: data.PostRow | None) -> int | None:
    return post.id if post is not None else None


def post_id(post: data.PostRow) -> int:
    return post.id
