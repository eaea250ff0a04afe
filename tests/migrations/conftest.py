"""Migration tests: each gets a scratch database of its own (migrations run on an empty one)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import RUN_ID, _admin, _outside_loop


@pytest.fixture
def scratch_url(server_urls: tuple[str, str], request: pytest.FixtureRequest) -> Iterator[str]:
    admin_url = server_urls[0]
    # One name per test module: the modules never share a database.
    name = f"creatordeck_{request.module.__name__.rsplit('.', 1)[-1]}_{RUN_ID}"[:63]
    _outside_loop(lambda: asyncio.run(_admin(admin_url, f'CREATE DATABASE "{name}"')))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        _outside_loop(
            lambda: asyncio.run(_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        )
