"""`creatordeck rollup`: run the rollup jobs with a progress display, or check idempotency."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from engine.experiments.rollups import (
    ALL_JOBS,
    Job,
    RollupReport,
    check_idempotency,
    run_rollups,
    window_for,
)
from storage.database import Database
from storage.settings import Settings


def _print_report(out: Console, report: RollupReport, title: str) -> None:
    w = report.window
    out.print(f"[bold]{title}[/] window {w.start.isoformat()} … {w.end.isoformat()} ({w.days} d)")
    for r in report.results:
        mode = "incremental" if r.incremental else "full"
        out.print(
            f"  {r.job.value:<12} {mode:<11} recomputed {r.units_of_work:>4}  "
            f"rows written {r.rows_written:>7}  {r.duration_ms:>7} ms  run #{r.run_id}"
        )
    for table, digest in sorted(report.checksums.items()):
        out.print(f"  {table:<18} md5 {digest}")


async def _run(
    settings: Settings,
    window_days: int,
    jobs: Sequence[Job],
    incremental: bool,
    check: bool,
    out: Console,
) -> int:
    db = Database(settings)
    window = window_for(window_days)
    try:
        with Progress(
            TextColumn("{task.description:<32}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=out,
            transient=True,
        ) as progress:
            task = progress.add_task("rollup", total=None)

            def report(label: str, done: int, total: int) -> None:
                progress.update(task, description=label, completed=done, total=total)

            if check:
                result = await check_idempotency(
                    db, window, jobs, progress=report, readers=settings.engine.rollup_readers
                )
            else:
                single = await run_rollups(
                    db,
                    window,
                    jobs,
                    incremental=incremental,
                    progress=report,
                    readers=settings.engine.rollup_readers,
                )
        if not check:
            _print_report(out, single, "rollup")
            return 0
        _print_report(out, result.first, "first run")
        _print_report(out, result.second, "second run")
        if result.identical:
            out.print("[green]idempotent:[/] the second run left every rollup table identical")
            return 0
        out.print(
            "[red]NOT idempotent:[/] changed by the second run: "
            + ", ".join(result.changed_tables)
            + " (events arriving between the runs also change them)"
        )
        return 1
    finally:
        await db.dispose()


def run_rollup_command(
    settings: Settings,
    window_days: int,
    jobs: Sequence[str],
    incremental: bool,
    check: bool,
) -> int:
    chosen = tuple(Job(j) for j in jobs) or ALL_JOBS
    out = Console(stderr=True)
    return asyncio.run(_run(settings, window_days, chosen, incremental, check, out))
