"""Two operators, one post / one experiment: an edit carries the version it was made against,
and a stale one is refused with who changed it, when, and what it is now (never
last-writer-wins). The engine's own status updates do not count as changes."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import update

from storage.database import Database
from storage.models import ExperimentStatus, Post, Publication
from storage.queries import experiments as q
from storage.queries import publishing
from storage.queries.experiments import ExperimentChanged
from storage.queries.publishing import PostChanged
from tests.console.screens.test_posts import make_post
from tests.console.test_app import FROZEN
from tests.support.experiments import make_experiment
from tests.support.publishing import add_connection


async def post_version(db: Database, post_id: int) -> int:
    async with db.session() as session:
        post = await session.get(Post, post_id)
        assert post is not None
        return post.version


async def experiment_version(db: Database, key: str) -> int:
    async with db.session() as session:
        experiment = await q.get_experiment(session, key)
        assert experiment is not None
        return experiment.version


# --- posts -------------------------------------------------------------------------------------


async def test_a_post_s_changes_bump_its_version_and_a_stale_reschedule_is_refused(
    db: Database,
) -> None:
    conn = await add_connection(db, "alice")
    post_id = await make_post(db, [conn.id], None, "draft")
    assert await post_version(db, post_id) == 1
    first = FROZEN + timedelta(days=1)
    async with db.transaction() as session:
        await publishing.schedule_post(
            session, post_id, first, "Europe/Paris", "ALICE", FROZEN, version=1
        )
    assert await post_version(db, post_id) == 2
    # Bob opened the schedule modal at version 1, before Alice's save.
    with pytest.raises(PostChanged) as refused:
        async with db.transaction() as session:
            await publishing.schedule_post(
                session, post_id, first + timedelta(hours=5), "UTC", "BOB", FROZEN, version=1
            )
    message = str(refused.value)
    assert message.startswith(f"post {post_id} changed by ALICE at ")
    assert "(version 1 → 2)" in message
    local = first.astimezone(publishing.zone("Europe/Paris"))
    assert message.endswith(f"now scheduled for {local:%a %m-%d %H:%M} Europe/Paris")
    async with db.session() as session:
        post = await session.get(Post, post_id)
        assert post is not None and post.scheduled_at == first  # not overwritten
    # Made against what is there now, it goes through; no version (CLI, scripts): no check.
    async with db.transaction() as session:
        await publishing.schedule_post(
            session, post_id, first + timedelta(hours=5), "UTC", "BOB", FROZEN, version=2
        )
    async with db.transaction() as session:
        await publishing.schedule_post(session, post_id, first, "UTC", "cli", FROZEN)
    assert await post_version(db, post_id) == 4


async def test_a_stale_cancel_is_refused_and_shows_the_reschedule(db: Database) -> None:
    conn = await add_connection(db, "alice")
    post_id = await make_post(db, [conn.id], FROZEN + timedelta(days=1), "soon")
    version = await post_version(db, post_id)
    later = FROZEN + timedelta(days=3)
    async with db.transaction() as session:
        await publishing.schedule_post(
            session, post_id, later, "UTC", "ALICE", FROZEN, version=version
        )
    with pytest.raises(PostChanged, match=r"changed by ALICE .* now scheduled for "):
        async with db.transaction() as session:
            await publishing.cancel_post(session, post_id, "BOB", version=version)
    async with db.session() as session:
        post = await session.get(Post, post_id)
        assert post is not None and post.status == "scheduled"
    async with db.transaction() as session:
        await publishing.cancel_post(session, post_id, "BOB", version=version + 1)
    assert await post_version(db, post_id) == version + 2
    # A reschedule made against the version before the cancel says it is cancelled now.
    with pytest.raises(PostChanged, match=r"changed by BOB .* now cancelled$"):
        async with db.transaction() as session:
            await publishing.schedule_post(
                session, post_id, later, "UTC", "ALICE", FROZEN, version=version + 1
            )


async def test_a_retry_moves_the_post_on_and_the_engine_s_updates_do_not(db: Database) -> None:
    conn = await add_connection(db, "alice")
    post_id = await make_post(db, [conn.id], FROZEN + timedelta(days=1), "x")
    version = await post_version(db, post_id)
    async with db.transaction() as session:  # the engine: publishing, then failed for good
        pub = await session.scalar(
            update(Publication)
            .where(Publication.post_id == post_id)
            .values(status="failed")
            .returning(Publication.id)
        )
        await publishing.refresh_post_status(session, post_id)
    assert pub is not None
    assert await post_version(db, post_id) == version
    async with db.transaction() as session:
        await publishing.retry_publication(session, pub, "ALICE", FROZEN)
    assert await post_version(db, post_id) == version + 1
    with pytest.raises(PostChanged, match=r"changed by ALICE at "):  # the publication's audit
        async with db.transaction() as session:
            await publishing.cancel_post(session, post_id, "BOB", version=version)


async def test_two_cancels_racing_from_the_same_version_one_wins(db: Database) -> None:
    conn = await add_connection(db, "alice")
    post_id = await make_post(db, [conn.id], FROZEN + timedelta(days=1), "x")
    version = await post_version(db, post_id)
    wrote, release = asyncio.Event(), asyncio.Event()

    async def alice() -> None:
        async with db.transaction() as session:
            await publishing.schedule_post(
                session, post_id, FROZEN + timedelta(days=2), "UTC", "ALICE", FROZEN, version
            )
            wrote.set()
            await release.wait()  # holds the post's row lock while bob tries

    async def bob() -> None:
        await wrote.wait()
        async with db.transaction() as session:
            await publishing.cancel_post(session, post_id, "BOB", version=version)

    first = asyncio.create_task(alice())
    second = asyncio.create_task(bob())
    await asyncio.sleep(0.2)  # bob is now waiting on the lock (or refused later either way)
    release.set()
    await first
    with pytest.raises(PostChanged):
        await second


# --- experiments -------------------------------------------------------------------------------


async def test_every_experiment_edit_bumps_the_version(db: Database) -> None:
    await make_experiment(db, "onboarding", status=ExperimentStatus.DRAFT)
    assert await experiment_version(db, "onboarding") == 1
    async with db.transaction() as session:
        await q.add_variant(session, "onboarding", "v2", actor="ALICE", version=1)
        await q.set_weights(
            session,
            "onboarding",
            {"control": 0.5, "v1": 0.25, "v2": 0.25},
            actor="ALICE",
            version=2,
        )
        await q.set_status(
            session, "onboarding", ExperimentStatus.RUNNING, actor="ALICE", version=3
        )
    assert await experiment_version(db, "onboarding") == 4


async def test_a_stale_weights_edit_is_refused_and_shows_the_other_change(db: Database) -> None:
    await make_experiment(db, "onboarding")  # created and started: version 2
    async with db.transaction() as session:
        await q.set_weights(
            session, "onboarding", {"control": 0.9, "v1": 0.1}, actor="ALICE", version=2
        )
    with pytest.raises(ExperimentChanged) as refused:
        async with db.transaction() as session:
            await q.set_weights(
                session, "onboarding", {"control": 0.2, "v1": 0.8}, actor="BOB", version=2
            )
    message = str(refused.value)
    assert message.startswith("onboarding changed by ALICE at ")
    assert message.endswith("(version 2 → 3): now running, weights control=0.9 v1=0.1")
    async with db.session() as session:
        experiment = await q.get_experiment(session, "onboarding")
        assert experiment is not None
        assert [v.weight for v in experiment.variants] == [0.9, 0.1]  # not overwritten


async def test_a_stale_stop_or_variant_is_refused(db: Database) -> None:
    await make_experiment(db, "onboarding", status=ExperimentStatus.DRAFT)
    async with db.transaction() as session:
        await q.set_status(
            session, "onboarding", ExperimentStatus.RUNNING, actor="ALICE", version=1
        )
    with pytest.raises(ExperimentChanged, match=r"now running, weights"):
        async with db.transaction() as session:
            await q.add_variant(session, "onboarding", "v2", actor="BOB", version=1)
    with pytest.raises(ExperimentChanged, match=r"changed by ALICE"):
        async with db.transaction() as session:
            await q.set_status(
                session, "onboarding", ExperimentStatus.STOPPED, actor="BOB", version=1
            )
    assert await experiment_version(db, "onboarding") == 2
