"""10,000 posts scheduled for the same instant, published to the mock platform by real engines.

    python -m bench.publish_burst [--posts 10000] [--accounts 100] [--engines 2]
                                  [--concurrency 8] [--faults both|none|10] [--timeout 300]
                                  [--profile DIR] [--media]

Each run gets a fresh database and Redis prefix, a `creatordeck mockstagram` process on a
loopback port, and `creatordeck engine --role worker` processes. The posts (one publication each,
spread over `--accounts` mock accounts) are enqueued ahead of time, all due at the same instant.
With faults, 10% of publish requests fail: 503, 429 + Retry-After, 500 after storing the post, or
"accepted but the response is lost" (the post is stored, the answer comes after the client's
timeout). The mock does NOT dedupe by idempotency key in these runs, so every duplicate our
engine made would show as a second post.

With `--media` each post carries a small image file (the demo's 12 KB PNG, written into a
temporary folder): the engine checks it again before sending (media_rules), uploads it to the
mock (`POST /publishing/v1/{account}/media`, checkpointed) and posts with the media id, so every
publication costs two requests. The mock's `uploads` counts them.

The burst is enqueued as the engine enqueues any burst (engine.publish_queue.plan_jobs): batch
jobs of up to BATCH_SIZE publications, ordered by account, each claimed in one statement.

Figures: start lateness (first attempt started - due time), publish lateness (published_at -
due time, retries included), throughput, duplicates (must be 0), the arq no-op ceiling measured
in the same run, the machine's load, and the CPU seconds spent from the due instant to the end
by the engines, the mock, Postgres and Redis (whole servers: shared with other users) and the
whole machine, each also per publish request (`--profile DIR` runs the engines under cProfile).
The floor (issue 10): without faults p99 publish lateness < 5 s; with faults every publication
final (published, failed or unknown) within 60 s of its due time; 0 duplicates in both. Exits 1
on any duplicate or an unfinished run, and says whether each floor was met.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert

from bench.support import (
    arq_noop_ceiling,
    bench_settings,
    cpu_seconds,
    free_port,
    machine,
    percentile,
    postgres_cpu,
    summary,
    wait_http,
)
from console.demo.seed_posts import demo_image
from engine import publish_queue
from engine.runtime import Runtime
from storage.crypto import TokenCipher
from storage.models import Platform, Post, Publication
from storage.queries import publishing
from storage.queries.publishing import JobRef
from storage.settings import Settings

FAULTS = {
    "rate": 0.10,
    "kinds": ["unavailable", "rate_limited", "server_error", "lost"],
    "lost_delay_s": 6.0,
    "retry_after_s": 1,
    "honour_idempotency": False,
    "seed": 7,
}
NO_FAULTS = {"rate": 0.0, "honour_idempotency": False}


def http(method: str, url: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as response:  # loopback only
        return json.loads(response.read())


async def prepare(
    settings: Settings, posts: int, accounts: int, due: datetime, media: list[str]
) -> None:
    rt = await Runtime.connect(settings)
    cipher = TokenCipher(settings.encryption_key.get_secret_value())  # type: ignore[union-attr]
    ids: list[int] = []
    async with rt.db.transaction() as session:
        for n in range(accounts):
            conn = await publishing.save_connection(
                session,
                cipher,
                publishing.ConnectionInput(
                    platform=Platform.MOCK,
                    account_id=f"acct{n:04d}",
                    display_name=f"@acct{n:04d}",
                    token=f"tok-{n}",
                ),
                actor="bench",
            )
            ids.append(conn.id)
    jobs: list[JobRef] = []
    async with rt.db.session() as session:
        for start in range(0, posts, 2000):
            chunk = range(start, min(start + 2000, posts))
            post_ids = list(
                await session.scalars(
                    insert(Post)
                    .values(
                        [
                            {
                                "body": f"bench post {i}",
                                "media": media,
                                "scheduled_at": due,
                                "status": "scheduled",
                                "created_by": "bench",
                            }
                            for i in chunk
                        ]
                    )
                    .returning(Post.id)
                )
            )
            rows = await session.execute(
                insert(Publication)
                .values(
                    [
                        {
                            "post_id": post_id,
                            "connection_id": ids[n % accounts],
                            "status": "scheduled",
                            "generation": 1,
                            "due_at": due,
                            "idempotency_key": os.urandom(16).hex(),
                        }
                        for n, post_id in zip(chunk, post_ids, strict=True)
                    ]
                )
                .returning(Publication.id, Publication.generation, Publication.connection_id)
            )
            jobs.extend(JobRef(pub, gen, due, conn) for pub, gen, conn in rows.all())
        await session.commit()
    added = await publish_queue.enqueue_publications(rt.redis, settings, jobs)
    print(f"  enqueued {len(jobs)} publications as {added} publish jobs due at {due:%H:%M:%S}Z")
    await rt.close()


async def progress(settings: Settings) -> dict[str, int]:
    rt = await Runtime.connect(settings)
    try:
        async with rt.db.session() as session:
            return await publishing.status_counts(session)
    finally:
        await rt.close()


async def figures(settings: Settings, due: datetime) -> dict[str, Any]:
    rt = await Runtime.connect(settings)
    try:
        async with rt.db.engine.connect() as conn:
            first = await conn.execute(
                text(
                    "SELECT extract(epoch from min(a.started_at) - :due) * 1000 "
                    "FROM publication_attempt a GROUP BY a.publication_id"
                ),
                {"due": due},
            )
            starts = [float(v) for (v,) in first]
            done = await conn.execute(
                text(
                    "SELECT extract(epoch from published_at - :due) * 1000 FROM publication "
                    "WHERE status = 'published'"
                ),
                {"due": due},
            )
            published = [float(v) for (v,) in done]
            settled = await conn.execute(
                text(
                    "SELECT extract(epoch from updated_at - :due) * 1000 FROM publication "
                    "WHERE status IN ('published', 'failed', 'unknown')"
                ),
                {"due": due},
            )
            final = [float(v) for (v,) in settled]
            attempts = await conn.scalar(text("SELECT count(*) FROM publication_attempt"))
            outcomes = await conn.execute(
                text("SELECT outcome, count(*) FROM publication_attempt GROUP BY outcome")
            )
            by_outcome = {str(k): int(v) for k, v in outcomes}
    finally:
        await rt.close()
    return {
        "starts": starts,
        "published": published,
        "final": final,
        "attempts": int(attempts or 0),
        "outcomes": by_outcome,
    }


def _redis_cpu() -> float:
    out = subprocess.run(["pgrep", "-x", "redis-server"], capture_output=True, text=True).stdout
    return sum(cpu_seconds(int(pid)) for pid in out.split())


def _cpu(engines: list[subprocess.Popen[bytes]], mock: subprocess.Popen[bytes]) -> dict[str, float]:
    """CPU seconds so far: engines (summed), the mock, every postgres and redis process (the
    servers are shared with other users of the machine: their figures are upper bounds)."""
    return {
        "engines": sum(cpu_seconds(p.pid) for p in engines),
        "mock": cpu_seconds(mock.pid),
        "postgres": postgres_cpu(),
        "redis": _redis_cpu(),
        "machine busy": _machine_busy(),
    }


def _machine_busy() -> float:
    """CPU seconds the whole machine spent busy so far (all cores, every user: /proc/stat)."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _python(args: argparse.Namespace, n: int) -> list[str]:
    """The interpreter command of engine `n`: under cProfile with --profile DIR."""
    if not args.profile:
        return [sys.executable]
    return [sys.executable, "-m", "cProfile", "-o", f"{args.profile}/engine-{n}.prof"]


def run(args: argparse.Namespace, faults: dict[str, Any], label: str) -> bool:
    """One burst; prints its figures; False when an invariant broke (duplicates, unfinished)."""
    key = Fernet.generate_key().decode()
    with (
        bench_settings(encryption_key=SecretStr(key)) as settings,
        tempfile.TemporaryFile() as logs,
        tempfile.TemporaryDirectory(prefix="burst-media-") as folder,
    ):
        ceiling = arq_noop_ceiling(settings)
        port = free_port()
        mock_url = f"http://127.0.0.1:{port}"
        mock = subprocess.Popen(
            [sys.executable, "-m", "console.cli", "mockstagram", "--port", str(port)],
            stdout=logs,
            stderr=subprocess.STDOUT,
        )
        engines: list[subprocess.Popen[bytes]] = []
        try:
            wait_http(f"{mock_url}/health")
            http("POST", f"{mock_url}/publishing/_control/faults", faults)
            due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=args.lead_s)
            media = [str(demo_image(Path(folder)))] if args.media else []
            asyncio.run(prepare(settings, args.posts, args.accounts, due, media))
            env = dict(
                os.environ,
                DATABASE_URL=settings.database_url or "",
                REDIS_URL=settings.redis_url or "",
                REDIS_PREFIX=settings.redis_prefix,
                ENCRYPTION_KEY=key,
                MOCKSTAGRAM_URL=mock_url,
                LOG_LEVEL="WARNING",
                CONCURRENCY=str(args.concurrency),
                DB_POOL_SIZE=str(args.pool),
                TICK_TIMEOUT_S="10",  # publish job limit 10 s, request timeout 5 s
            )
            engines = [
                subprocess.Popen(
                    [*_python(args, n), "-m", "console.cli", "engine", "--role", "worker"],
                    env=env,
                    stdout=logs,
                    stderr=subprocess.STDOUT,
                )
                for n in range(args.engines)
            ]
            load_before = machine()
            # CPU is counted from just before the due instant (engine start-up excluded).
            time.sleep(max((due - datetime.now(UTC)).total_seconds() - 0.2, 0))
            cpu_before = _cpu(engines, mock)
            deadline = time.monotonic() + args.timeout
            final = 0
            counts: dict[str, int] = {}
            while time.monotonic() < deadline:
                time.sleep(2)
                counts = asyncio.run(progress(settings))
                final = sum(counts.get(s, 0) for s in ("published", "failed", "unknown"))
                if final >= args.posts:
                    break
            load_after = machine()
            cpu_after = _cpu(engines, mock)
            stats = http("GET", f"{mock_url}/publishing/_control/stats")
        finally:
            for proc in [*engines, mock]:
                proc.terminate()
            for proc in [*engines, mock]:
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
        found = asyncio.run(figures(settings, due))
    published = counts.get("published", 0)
    # Every post body is unique, and the mock does not dedupe: a second post of one publication
    # shows as a duplicate text (and key).
    duplicates = max(stats["duplicate_texts"], stats["duplicate_keys"])
    unrecorded = stats["created"] - duplicates - published
    print(f"\n== {label} ==")
    print(f"machine before: {load_before}")
    print(f"machine after:  {load_after}")
    print(
        f"posts={args.posts} accounts={args.accounts} engines={args.engines} media={args.media} "
        f"concurrency={args.concurrency} (publish jobs at once per engine: "
        f"{args.concurrency * 10})"
    )
    print(f"publications: {json.dumps(counts, sort_keys=True)}")
    print(f"attempts: {found['attempts']} {json.dumps(found['outcomes'], sort_keys=True)}")
    print(f"mock: {json.dumps(stats, sort_keys=True)}")
    print(f"start lateness (ms, first attempt - due):   {summary(found['starts'])}")
    if found["published"]:
        print(f"publish lateness (ms, published - due):     {summary(found['published'])}")
        span = max(found["published"]) / 1000
        rate = published / span
        print(f"throughput: {rate:.0f} publications/s over {span:.1f}s")
        print(f"baseline: arq no-op ceiling {ceiling:.0f} jobs/s (same run, one process)")
        print(f"ratio: {rate / ceiling:.2f}x the arq ceiling")
    spent = {k: cpu_after[k] - cpu_before[k] for k in cpu_after}
    per_pub = 1000 / max(stats["requests"], 1)
    print(
        "CPU seconds during the run (ms per publish request): "
        + ", ".join(f"{k} {v:.1f}s ({v * per_pub:.2f})" for k, v in spent.items())
    )
    print(f"DUPLICATES: {duplicates}  (posts on the platform beyond one per publication)")
    print(f"posts on the platform not (yet) recorded as published: {unrecorded}")
    if final < args.posts:
        print(f"NOT DONE within {args.timeout}s: {final}/{args.posts} final")
    finals = found["final"]
    if faults.get("rate"):
        within = sum(1 for v in finals if v < 60_000)
        met = within == args.posts and duplicates == 0
        print(
            f"floor (all final within 60 s, 0 duplicates): {'MET' if met else 'NOT MET'} "
            f"({within}/{args.posts} final within 60 s)"
        )
    elif found["published"]:
        p99 = percentile(found["published"], 99)
        met = p99 < 5000 and duplicates == 0 and published == args.posts
        print(f"floor (p99 < 5 s, 0 duplicates): {'MET' if met else 'NOT MET'} (p99 {p99:.0f} ms)")
    return bool(duplicates == 0 and final >= args.posts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--posts", type=int, default=10_000)
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--engines", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--pool", type=int, default=15, help="DB_POOL_SIZE per engine")
    parser.add_argument("--lead-s", type=float, default=25, help="due this long after setup")
    parser.add_argument("--faults", choices=["both", "none", "10"], default="both")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--profile", default="", help="a folder: engines run under cProfile")
    parser.add_argument("--media", action="store_true", help="each post carries a small image")
    args = parser.parse_args()
    ok = True
    if args.faults in ("both", "none"):
        ok = run(args, NO_FAULTS, "no faults") and ok
    if args.faults in ("both", "10"):
        ok = run(args, FAULTS, "10% injected faults") and ok
    if not ok:
        print("FAILED: duplicates or unfinished publications (see above)")
        sys.exit(1)


if __name__ == "__main__":
    main()
