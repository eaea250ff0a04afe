"""Chaos soak: the whole product under load while its parts are killed, then the invariants.

    python -m bench.soak [--minutes 10] [--engines 2] [--regions 20] [--creators-per-region 25]

Its own embedded Postgres and Redis in a temporary folder (never your servers), loopback only,
bounded in time. While the mock platform, the api and engine replicas run under load (region
ticks every minute fetching creators, posts publishing, app events arriving), a chaos loop
SIGKILLs engines (and restarts them), restarts Redis with its data dropped, and restarts Postgres.
Then it checks:

- every region fire time of the soak has exactly one ledger row (ok, failed, skipped or missed);
- no follower sample is duplicated (one per creator per slot);
- no post was published twice (the mock platform counts by idempotency key and by text);
- no event the api accepted was lost;
- nothing is left running or scheduled once the soak has settled.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from cryptography.fernet import Fernet

import migrations
from bench.support import free_port, wait_http
from storage.database import plain_dsn
from storage.embedded.servers import EmbeddedServers

SETTLE_S = 90


def say(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


@dataclass
class Stack:
    """The processes under test and the servers under them."""

    folder: Path
    servers: EmbeddedServers
    env: dict[str, str]
    engines: list[subprocess.Popen[bytes]] = field(default_factory=list)
    others: list[subprocess.Popen[bytes]] = field(default_factory=list)
    chaos: Counter[str] = field(default_factory=Counter)

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        log = (self.folder / f"{args[0]}-{len(self.engines) + len(self.others)}.log").open("ab")
        return subprocess.Popen(
            [sys.executable, "-m", "console.cli", *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def kill_an_engine(self) -> None:
        victim = random.randrange(len(self.engines))
        self.engines[victim].send_signal(signal.SIGKILL)
        self.engines[victim].wait(timeout=10)
        self.engines[victim] = self.start("engine")
        self.chaos["engine SIGKILL + restart"] += 1

    def restart_redis_dropping_data(self) -> None:
        self.servers.redis.stop()
        for dump in self.servers.redis.folder.glob("*.rdb"):
            dump.unlink()
        self.servers.redis.start()
        self.chaos["redis restart, data dropped"] += 1

    def restart_postgres(self) -> None:
        # pgserver runs Postgres as its own system user when we are root; pg_ctl must too.
        from pgserver._commands import pg_ctl  # type: ignore[attr-defined]

        pg_ctl(
            ["-w", "-m", "fast", "restart"],
            pgdata=self.servers.postgres.folder,
            user=self.servers.postgres.server.system_user,
            timeout=60,
        )
        self.chaos["postgres restart"] += 1

    def stop_all(self) -> None:
        for proc in [*self.engines, *self.others]:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in [*self.engines, *self.others]:
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()

    def stop_postgres(self) -> None:
        # A server that `pg_ctl restart` relaunched is not pgserver's to stop: stop it here.
        from pgserver._commands import pg_ctl  # type: ignore[attr-defined]

        with contextlib.suppress(Exception):
            pg_ctl(
                ["-w", "-m", "fast", "stop"],
                pgdata=self.servers.postgres.folder,
                user=self.servers.postgres.server.system_user,
                timeout=60,
            )


async def seed(dsn: str, regions: int, per_region: int, accounts: int, key: str) -> list[str]:
    """Regions firing every minute, mock creators in each, mock accounts to publish to."""
    from storage.crypto import TokenCipher

    cipher = TokenCipher(key)
    conn = await asyncpg.connect(dsn)
    try:
        codes = [f"SOAK_{n:02d}" for n in range(regions)]
        await conn.executemany(
            "INSERT INTO region (code, name, cron, timezone, active, schedule_since) "
            "VALUES ($1, $1, '* * * * *', 'UTC', true, now())",
            [(code,) for code in codes],
        )
        await conn.copy_records_to_table(
            "creator",
            records=[
                ("mock", f"soak{r:02d}x{n:03d}", f"soak_{r}_{n}", code, "active")
                for r, code in enumerate(codes)
                for n in range(per_region)
            ],
            columns=["platform", "external_id", "handle", "region_code", "status"],
        )
        for n in range(accounts):
            await conn.execute(
                "INSERT INTO connection (platform, account_id, display_name, token_encrypted, "
                "status) VALUES ('mock', $1, $1, $2, 'ok')",
                f"soakacct{n}",
                cipher.encrypt(f"tok-{n}"),
            )
        return codes
    finally:
        await conn.close()


async def schedule_posts(settings_env: dict[str, str], count: int, span_s: float) -> int:
    """Posts spread over the soak, each to every mock account, through the real scheduling path."""
    from engine import publish_queue
    from engine.runtime import Runtime
    from storage.queries import publishing
    from storage.settings import Settings

    settings = Settings(
        database_url=settings_env["DATABASE_URL"],
        redis_url=settings_env["REDIS_URL"],
        redis_prefix=settings_env["REDIS_PREFIX"],
        _env_file=None,
    )
    rt = await Runtime.connect(settings)
    scheduled = 0
    try:
        async with rt.db.session() as session:
            accounts = [c.id for c in await publishing.list_connections(session)]
        start = datetime.now(UTC) + timedelta(seconds=20)
        for n in range(count):
            when = start + timedelta(seconds=span_s * n / count)
            data = publishing.PostInput(
                body=f"soak post {n}", connection_ids=accounts, scheduled_at=when
            )
            async with rt.db.transaction() as session:
                _, change = await publishing.create_post(session, data, actor="soak")
            await publish_queue.apply(rt.redis, settings, change)
            scheduled += 1
    finally:
        await rt.close()
    return scheduled


async def send_events(
    api: str, stop: asyncio.Event, accepted: set[str], tally: Counter[str]
) -> None:
    """Batches of app events; a batch that failed is resent as is (dedupe must absorb it)."""
    async with httpx.AsyncClient(timeout=10) as client:
        pending: list[dict[str, Any]] | None = None
        while not stop.is_set():
            now = datetime.now(UTC)
            batch = pending or [
                {
                    "event_id": str(uuid.uuid4()),
                    "unit_id": f"device-{random.randrange(5000)}",
                    "name": random.choice(["app_open", "view_creator", "follow"]),
                    "timestamp": now.isoformat(),
                    "properties": {"soak": True},
                }
                for _ in range(50)
            ]
            try:
                response = await client.post(
                    f"{api}/v1/events", json={"sent_at": now.isoformat(), "events": batch}
                )
            except httpx.HTTPError:
                tally["batches unanswered (resent)"] += 1
                pending = batch
                await asyncio.sleep(0.5)
                continue
            if response.status_code == 200:
                refused = {r["index"] for r in response.json()["refused"]}
                accepted.update(e["event_id"] for i, e in enumerate(batch) if i not in refused)
                tally["batches accepted"] += 1
                pending = None
            else:
                tally[f"batches answered {response.status_code} (resent)"] += 1
                pending = batch
            await asyncio.sleep(0.2)


async def chaos(stack: Stack, stop: asyncio.Event, every_s: tuple[float, float]) -> None:
    actions = [stack.kill_an_engine, stack.restart_redis_dropping_data, stack.restart_postgres]
    turn = 0
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=random.uniform(*every_s))
            return
        except TimeoutError:
            pass
        action = actions[turn % len(actions)]
        turn += 1
        say(f"chaos: {action.__name__}")
        await asyncio.to_thread(action)


async def verify(dsn: str, codes: list[str], start: datetime, end: datetime) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn)
    try:
        first = start.replace(second=0, microsecond=0) + timedelta(minutes=1)
        fires = []
        fire = first
        while fire <= end:
            fires.append(fire)
            fire += timedelta(minutes=1)
        rows = await conn.fetch(
            "SELECT region_code, scheduled_for, status FROM job_run "
            "WHERE kind = 'tick' AND NOT manual AND scheduled_for BETWEEN $1 AND $2",
            first,
            end,
        )
        per_fire = Counter((r["region_code"], r["scheduled_for"]) for r in rows)
        expected = {(code, fire) for code in codes for fire in fires}
        statuses = Counter(r["status"] for r in rows)
        samples: Any = await conn.fetchrow(
            "SELECT count(*) AS n, count(DISTINCT (creator_id, observed_at)) AS d "
            "FROM follower_sample"
        )
        events = {str(r["event_id"]) for r in await conn.fetch("SELECT event_id FROM event_log")}
        publications = await conn.fetch(
            "SELECT status, count(*) AS n FROM publication GROUP BY status ORDER BY status"
        )
        return {
            "fire_times": len(expected),
            "fire_times_without_row": len(expected - set(per_fire)),
            "fire_times_with_2+_rows": sum(1 for n in per_fire.values() if n > 1),
            "ledger_statuses": dict(statuses),
            "samples": samples["n"],
            "duplicate_samples": samples["n"] - samples["d"],
            "events_stored": len(events),
            "publications": {r["status"]: r["n"] for r in publications},
            "_events": events,
        }
    finally:
        await conn.close()


async def soak(args: argparse.Namespace, stack: Stack, codes: list[str]) -> None:
    api = stack.env["API_URL"]
    mock = stack.env["MOCKSTAGRAM_URL"]
    stop = asyncio.Event()
    accepted: set[str] = set()
    tally: Counter[str] = Counter()
    start = datetime.now(UTC)
    loaders = [asyncio.create_task(send_events(api, stop, accepted, tally))]
    chaos_task = asyncio.create_task(chaos(stack, stop, (args.chaos_min_s, args.chaos_max_s)))
    posts = await schedule_posts(stack.env, args.posts, args.minutes * 60 * 0.8)
    say(f"scheduled {posts} posts over the soak; load and chaos running for {args.minutes} min")
    await asyncio.sleep(args.minutes * 60)
    stop.set()
    await asyncio.gather(chaos_task, *loaders)
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    say(f"chaos over; settling {SETTLE_S} s so the last fire times and posts finish")
    await asyncio.sleep(SETTLE_S)
    result = await verify(plain_dsn(stack.env["DATABASE_URL"]), codes, start, end)
    async with httpx.AsyncClient(timeout=10) as client:
        platform = (await client.get(f"{mock}/publishing/_control/stats")).json()
    lost = accepted - result.pop("_events")
    print()
    print(
        f"soak: {args.minutes} min, {args.engines} engines, {len(codes)} regions x "
        f"{args.creators_per_region} creators, {posts} posts, machine {os.cpu_count()} cores, "
        f"load {os.getloadavg()[0]:.2f}"
    )
    print(f"chaos: {dict(stack.chaos)}")
    print(
        f"region fire times: {result['fire_times']}, without a ledger row: "
        f"{result['fire_times_without_row']}, with two or more: {result['fire_times_with_2+_rows']}"
        f"; statuses {result['ledger_statuses']}"
    )
    print(f"follower samples: {result['samples']}, duplicated: {result['duplicate_samples']}")
    print(
        f"publications: {result['publications']}; platform created {platform['created']}, "
        f"duplicate keys {platform['duplicate_keys']}, duplicate texts "
        f"{platform['duplicate_texts']}"
    )
    print(
        f"events accepted: {len(accepted)}, stored: {result['events_stored']}, "
        f"accepted but lost: {len(lost)}; {dict(tally)}"
    )
    stuck_ticks = result["ledger_statuses"].get("running", 0)
    stuck_posts = sum(
        n for status, n in result["publications"].items() if status in ("scheduled", "publishing")
    )
    print(f"left unfinished after the settle: {stuck_ticks} tick(s), {stuck_posts} publication(s)")
    failed = (
        stuck_ticks
        or stuck_posts
        or result["fire_times_without_row"]
        or result["fire_times_with_2+_rows"]
        or result["duplicate_samples"]
        or platform["duplicate_keys"]
        or platform["duplicate_texts"]
        or lost
    )
    print("INVARIANTS HOLD" if not failed else "INVARIANT BROKEN")
    if failed:
        raise SystemExit(1)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--engines", type=int, default=2)
    parser.add_argument("--regions", type=int, default=20)
    parser.add_argument("--creators-per-region", type=int, default=25)
    parser.add_argument("--posts", type=int, default=200)
    parser.add_argument("--accounts", type=int, default=3)
    parser.add_argument("--chaos-min-s", type=float, default=40)
    parser.add_argument("--chaos-max-s", type=float, default=70)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="cdsoak-"))
    say(f"embedded servers in {folder}")
    servers = EmbeddedServers(folder).start()
    key = Fernet.generate_key().decode()
    mock_port, api_port = free_port(), free_port()
    env = dict(
        os.environ,
        DATABASE_URL=servers.database_url,
        REDIS_URL=servers.redis_url,
        REDIS_PREFIX="soak",
        ENCRYPTION_KEY=key,
        METRICS_PORT="0",
        SHUTDOWN_GRACE_S="10",
        TICK_TIMEOUT_S="60",
        SAMPLE_SLOT_S="60",
        MOCKSTAGRAM_URL=f"http://127.0.0.1:{mock_port}",
        API_URL=f"http://127.0.0.1:{api_port}",
        LOG_LEVEL="WARNING",
    )
    stack = Stack(folder, servers, env)
    try:
        migrations.upgrade(servers.database_url)
        codes = asyncio.run(
            seed(
                plain_dsn(servers.database_url),
                args.regions,
                args.creators_per_region,
                args.accounts,
                key,
            )
        )
        stack.others.append(stack.start("mockstagram", "--port", str(mock_port), "--slot-s", "60"))
        stack.others.append(stack.start("api", "--host", "127.0.0.1", "--port", str(api_port)))
        stack.engines = [stack.start("engine") for _ in range(args.engines)]
        wait_http(f"{env['MOCKSTAGRAM_URL']}/publishing/_control/stats")
        wait_http(f"{env['API_URL']}/health")
        asyncio.run(soak(args, stack, codes))
    finally:
        stack.stop_all()
        stack.stop_postgres()
        servers.stop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
