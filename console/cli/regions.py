"""`creatordeck regions …`: region operations from the shell (backfill and its cancel).

A backfill runs a region's past fire times between two datetimes again (at most 1,000, past
only; engine.backfill says how); fire times already in the ledger are skipped. The actor is
the shell's user as an operator (console.data.acting: a viewer is refused), recorded on every
row and in the audit.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from console.cli.preflight import database, settings_or_exit

if TYPE_CHECKING:
    from storage.settings import Settings


def _when(text: str | None, option: str) -> datetime | None:
    """ISO 8601; a time without an offset is UTC (said in --help)."""
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise click.BadParameter(
            f"{text!r} is not an ISO 8601 datetime", param_hint=option
        ) from exc
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


@click.group()
def regions() -> None:
    """Regions: backfill past fire times (add, pause and edit them in the console)."""


@regions.command("backfill")
@click.argument("code")
@click.option("--from", "start", help="first datetime, ISO 8601 (no offset: UTC)")
@click.option("--to", "end", help="last datetime, ISO 8601 (no offset: UTC); not in the future")
@click.option("--cancel", is_flag=True, help="cancel the region's queued backfill fire times")
def regions_backfill(code: str, start: str | None, end: str | None, cancel: bool) -> None:
    """Run CODE's fire times between --from and --to again (at most 1,000), or --cancel them."""
    if cancel and (start or end):
        raise click.UsageError("--cancel takes no --from/--to: it cancels every queued one")
    if not cancel and (start is None or end is None):
        raise click.UsageError("give --from and --to (or --cancel)")
    settings = settings_or_exit()
    try:
        line = asyncio.run(_run(settings, code, _when(start, "--from"), _when(end, "--to"), cancel))
    except ValueError as exc:  # BackfillError, RegionError, ScheduleError: said as they are
        raise click.ClickException(str(exc)) from exc
    click.echo(line, err=True)


async def _run(
    settings: Settings, code: str, start: datetime | None, end: datetime | None, cancel: bool
) -> str:
    from console.data import backfill
    from console.data.acting import current_actor
    from engine import queues

    actor, now = current_actor(), datetime.now(UTC)
    redis = await queues.connect(settings)
    try:
        async with database(settings) as db:
            if cancel:
                count = await backfill.cancel(db, redis, settings, code, actor=actor, now=now)
                return f"{code}: {count} queued backfill fire time(s) cancelled"
            assert start is not None and end is not None
            report = await backfill.request(
                db, redis, settings, code, start, end, actor=actor, now=now
            )
            return report.line()
    finally:
        await redis.aclose()
