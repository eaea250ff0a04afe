"""The Posts screen's week calendar: which post stands in which day's column, and how a cell
reads (local time and the post's first letters, coloured by status). Pure: no I/O."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

from rich.text import Text

from console.data import publishing as data
from console.screens.post_modals import POST_STYLES

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def week_grid(posts: Iterable[data.PostRow | None], start: datetime) -> list[list[data.PostRow]]:
    """Seven columns from `start`, each the scheduled posts of that day in time order."""
    days: list[list[data.PostRow]] = [[] for _ in DAYS]
    scheduled = [p for p in posts if p is not None and p.scheduled_at is not None]
    for post in sorted(scheduled, key=lambda p: p.scheduled_at or start):
        index = (post.scheduled_at - start).days  # type: ignore[operator]
        if 0 <= index < len(DAYS):
            days[index].append(post)
    return days


DAY_WIDTH = 10  # the narrowest day column (80 columns: 7 days side by side)


def day_width(table_width: int) -> int:
    """A day column's width when 7 share `table_width` (each cell padded 1 on both sides)."""
    return max(DAY_WIDTH, table_width // len(DAYS) - 2)


def week_rows(
    days: list[list[data.PostRow]], timezone: str, width: int = DAY_WIDTH
) -> list[list[Text | str]]:
    """The table's rows: row n holds each day's n-th post (time and as much of its first line
    as the `width` of a day column holds), or an empty cell."""
    zone = ZoneInfo(timezone)
    rows: list[list[Text | str]] = []
    for row in range(max((len(d) for d in days), default=0)):
        cells: list[Text | str] = []
        for day in days:
            if row < len(day):
                post = day[row]
                local = post.scheduled_at.astimezone(zone)  # type: ignore[union-attr]
                text = f"{local:%H:%M} {post.first_line[: width - 6]}"
                cells.append(Text(text, style=POST_STYLES.get(post.status, "")))
            else:
                cells.append("")
        rows.append(cells)
    return rows
