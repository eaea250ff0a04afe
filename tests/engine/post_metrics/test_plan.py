"""The due-step plan and batching as pure functions of rows and a clock."""

from __future__ import annotations

from datetime import timedelta

from engine.post_metrics.plan import due_step, plan_batches, scan_window
from engine.post_metrics.readers import MAX_BATCH
from storage.queries.post_metrics import MetricCandidate
from tests.support.post_metrics import START

STEPS = [3600, 21_600, 86_400, 604_800]


def _cand(
    n: int, platform: str = "youtube", conn: int = 1, last: int | None = None
) -> MetricCandidate:
    return MetricCandidate(n, conn, platform, "acct", "tok", f"v{n}", START, last)


def test_due_step_is_the_latest_reached_step_not_yet_read() -> None:
    at = START
    assert due_step(at, None, STEPS, at + timedelta(minutes=59)) is None
    assert due_step(at, None, STEPS, at + timedelta(hours=1)) == 3600
    assert due_step(at, 3600, STEPS, at + timedelta(hours=2)) is None
    assert due_step(at, 3600, STEPS, at + timedelta(hours=6)) == 21_600
    # Missed steps are not read late: two days on, the 24 h step is the one read.
    assert due_step(at, None, STEPS, at + timedelta(days=2)) == 86_400
    assert due_step(at, 604_800, STEPS, at + timedelta(days=30)) is None


def test_batches_follow_each_platform_and_account() -> None:
    now = START + timedelta(hours=1)
    cands = [_cand(n) for n in range(120)]  # YouTube: 50 ids per videos.list
    cands += [_cand(1000 + n, "x", conn=2) for n in range(150)]  # X: 100 per /2/tweets
    cands += [_cand(2000 + n, "facebook", conn=3) for n in range(3)]  # one per post
    cands += [_cand(3000, "youtube", conn=4)]  # another account: its own batch
    cands += [_cand(4000, "youtube", conn=1, last=3600)]  # already read: not planned
    batches = plan_batches(cands, STEPS, now, MAX_BATCH)
    sizes = sorted((b.platform, b.connection_id, len(b.reads)) for b in batches)
    assert sizes == [
        ("facebook", 3, 1),
        ("facebook", 3, 1),
        ("facebook", 3, 1),
        ("x", 2, 50),
        ("x", 2, 100),
        ("youtube", 1, 20),
        ("youtube", 1, 50),
        ("youtube", 1, 50),
        ("youtube", 4, 1),
    ]
    assert all(r.step_s == 3600 for b in batches for r in b.reads)


def test_scan_window_covers_first_step_to_twice_the_last() -> None:
    after, before = scan_window(STEPS, START)
    assert before == START - timedelta(hours=1)
    assert after == START - timedelta(days=14)
