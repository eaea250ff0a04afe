"""How many uvicorn processes `creatordeck api` runs: --workers, else API_WORKERS, else cores."""

from __future__ import annotations

import os

from engine.api.serve import worker_count
from storage.settings import Settings


def test_api_workers_default_to_the_cores_available(test_settings: Settings) -> None:
    cores = len(os.sched_getaffinity(0))
    assert worker_count(test_settings.replace(api={"workers": 0})) == cores
    assert worker_count(test_settings.replace(api={"workers": 3})) == 3
    assert worker_count(test_settings.replace(api={"workers": 3}), 1) == 1
