"""The rollup job on the engine's rollups queue: enqueued, run by its worker, recorded."""

from __future__ import annotations

from sqlalchemy import select

from engine.jobs.rollups import cron_jobs, enqueue_rollup, queue_name
from engine.queue_specs import SPECS
from engine.redis_keys import ROLLUPS
from engine.runtime import Runtime
from engine.worker import build_worker
from storage.database import Database
from storage.models import RollupRun
from storage.settings import Settings
from tests.support.experiments import make_experiment


async def test_enqueued_rollup_runs_on_the_rollups_queue(
    test_settings: Settings, db: Database
) -> None:
    await make_experiment(db, "engine-rollup")
    rt = await Runtime.connect(test_settings)
    try:
        job_id = await enqueue_rollup(rt, window_days=3)
        assert job_id is not None and job_id.startswith(test_settings.redis_prefix)
        assert await rt.redis.zcard(queue_name(test_settings)) == 1
        worker = build_worker(rt, SPECS[ROLLUPS])
        worker.burst = True
        # Only the job enqueued above: the queue's crons (rollups at :02/:17/:32/:47,
        # partition upkeep at :07) would also run if the test happened to start on one.
        worker.cron_jobs = []
        await worker.main()
        assert worker.jobs_complete == 1 and worker.jobs_failed == 0
    finally:
        await rt.close()
    async with db.session() as session:
        runs = list(await session.scalars(select(RollupRun).order_by(RollupRun.id)))
    assert [(r.job, r.trigger, r.status, r.window_days) for r in runs] == [
        ("daily", "engine", "ok", 3),
        ("experiments", "engine", "ok", 3),
        ("funnels", "engine", "ok", 3),
    ]


def test_cron_job_ids_live_under_the_prefix(test_settings: Settings) -> None:
    jobs = cron_jobs(test_settings)
    assert [j.name.rsplit(":", 1)[-1] for j in jobs] == ["rollups", "maintain_partitions"]
    for job in jobs:
        assert job.name.startswith(f"{test_settings.redis_prefix}:")
        assert job.unique


async def test_demo_seed_fills_the_console_once(db: Database) -> None:
    from console.demo.seed_experiments import seed_demo
    from storage.queries import experiments as q

    stored = await seed_demo(db, units=400)
    assert stored > 400
    assert await seed_demo(db, units=400) == 0  # idempotent
    async with db.session() as session:
        keys = [e.key for e in await q.list_experiments(session)]
        experiment = await q.get_experiment(session, "onboarding-v2")
        assert experiment is not None
        rows = await q.read_experiment_rollup(session, experiment.id, 14)
    assert keys == ["onboarding-v2", "creator-cards"]
    assert sum(r.units for r in rows) == 400
