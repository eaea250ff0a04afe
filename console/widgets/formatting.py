"""How times, durations and statuses look in the console (one place, so every screen agrees)."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.text import Text

# Named ANSI colours: they render the same on a 256-colour terminal over SSH as locally.
STATUS_STYLES = {
    "ok": "green",
    "running": "bold yellow",
    "failed": "bold red",
    "skipped": "cyan",
    "missed": "magenta",
    "queued": "yellow",
    "cancelled": "dim",
}


def when(moment: datetime | None) -> str:
    """A UTC moment as `MM-DD HH:MM` (the header says the console speaks UTC)."""
    if moment is None:
        return "-"
    return moment.astimezone(UTC).strftime("%m-%d %H:%M")


def when_seconds(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    return moment.astimezone(UTC).strftime("%m-%d %H:%M:%S")


def millis(value: int | None) -> str:
    """A duration in ms as a short human figure: 850ms, 1.2s, 3m05s, 2h10m, 3d4h."""
    if value is None:
        return "-"
    if value < 1000:
        return f"{value}ms"
    seconds = value / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours}h"


def status(value: str | None) -> Text:
    if value is None:
        return Text("-", style="dim")
    return Text(value, style=STATUS_STYLES.get(value, ""))


def count(n: int, thing: str, things: str | None = None) -> str:
    """`1 account`, `2 accounts`, `12,000 regions`; `things` for a plural that is not `thing` + s.

    Thousands separated: a person reads these counts, and 12000 is read slower than 12,000.
    """
    return f"{n:,} {thing if n == 1 else (things or thing + 's')}"
