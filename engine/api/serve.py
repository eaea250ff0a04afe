"""`creatordeck api`: uvicorn serving the app, JSON logs, SIGTERM-clean.

One process per CPU core by default: the hot paths (assignment, event batches) spend their
time in Python (JSON, validation, the driver), so one process tops out at one core; measured
on 2 cores, 2 workers serve ~1.7x the assignments of one. Each worker has its own asyncpg pool
(`DB_POOL_SIZE`), so Postgres sees workers x pool connections.
"""

from __future__ import annotations

import os

import uvicorn

from engine import gc_policy, logs
from engine.api.app import create_app
from storage.settings import Settings


def worker_count(settings: Settings, requested: int | None = None) -> int:
    """--workers, else API_WORKERS, else the CPU cores this process may run on."""
    if requested:
        return requested
    if settings.api.workers:
        return settings.api.workers
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def serve(settings: Settings, host: str, port: int, workers: int = 1) -> None:
    logs.configure(settings.log_level)
    if workers > 1:
        # Several processes: uvicorn imports the factory in each one (settings from the env).
        uvicorn.run(
            "engine.api.serve:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_config=None,
            access_log=False,
            loop="auto",
            http="auto",
        )
        return
    app = create_app(settings)
    gc_policy.apply()  # the app is built: its start-up heap is frozen before the first request
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_config=None,  # keep the JSON logging configured above
        access_log=False,  # one line per request would cost more than the request
        loop="auto",  # uvloop when installed
        http="auto",  # httptools when installed
        timeout_graceful_shutdown=10,
    )


def app_from_env():  # type: ignore[no-untyped-def]
    from storage.settings import get_settings

    settings = get_settings()
    logs.configure(settings.log_level)
    app = create_app(settings)
    gc_policy.apply()  # in each worker process, as `serve` does in its one
    return app
