"""`creatordeck api`: uvicorn serving the app, JSON logs, SIGTERM-clean."""

from __future__ import annotations

import uvicorn

from engine import logs
from engine.api.app import create_app
from storage.settings import Settings


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
    uvicorn.run(
        create_app(settings),
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
    return create_app(settings)
