"""The process's recorder of confirmed publications: one writer for every batch job running,
and a failed write handed to every job that was running (so arq retries them)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from engine.jobs.publish_recorder import FLUSH_S, Recorder
from storage.database import Database
from storage.errors import DB_DOWN_ERRORS
from storage.models import Connection, Post, Publication
from storage.queries.publishing import Done, Work


def done(publication_id: int) -> Done:
    work = Work(Publication(id=publication_id, generation=1), Post(id=1), Connection(id=1), True)
    return Done(work, publication_id, f"x{publication_id}", None)


async def test_rows_of_all_jobs_are_written_and_the_loop_stops_with_the_last_job(
    db: Database,
) -> None:
    tallies = 0

    async def flush_tallies() -> None:
        nonlocal tallies
        tallies += 1

    recorder = Recorder(db.engine, flush_tallies)
    first, second = recorder.start(), recorder.start()
    recorder.rows.extend([done(1), done(2)])
    await asyncio.sleep(FLUSH_S * 3)
    assert recorder.rows == [] and tallies >= 1  # the loop wrote them (no such rows: no-op)
    recorder.rows.append(done(3))
    await recorder.finish(first)
    assert recorder.rows == []
    await recorder.finish(second)
    await asyncio.sleep(FLUSH_S * 2)
    assert recorder._loop is not None and recorder._loop.done()  # idle: no loop
    await recorder.close()


async def test_a_failed_write_fails_every_job_running_then_and_keeps_nothing() -> None:
    dead = create_async_engine("postgresql+asyncpg://postgres@127.0.0.1:1/none")

    async def flush_tallies() -> None:
        return None

    recorder = Recorder(dead, flush_tallies)
    first, second = recorder.start(), recorder.start()
    recorder.rows.append(done(1))
    with pytest.raises(DB_DOWN_ERRORS):
        await recorder.finish(first)
    with pytest.raises(DB_DOWN_ERRORS):  # its write failed while this job ran
        await recorder.finish(second)
    assert recorder.rows == []  # left PUBLISHING in Postgres: taken over verify-first
    third = recorder.start()
    await recorder.finish(third)  # nothing pending, nothing failed since it started
    await recorder.close()
    await dead.dispose()
