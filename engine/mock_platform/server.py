"""Serve the mock platform with uvicorn (what `creatordeck mockstagram` runs)."""

from __future__ import annotations

import uvicorn

from engine.mock_platform.app import create_app
from engine.mock_platform.config import MockConfig

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def serve(config: MockConfig, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    uvicorn.run(
        create_app(config),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        # Keep-alive long enough for pooled clients between ticks.
        timeout_keep_alive=30,
    )
