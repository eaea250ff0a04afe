"""A clock a test moves by hand (a `storage.clock.Clock`): nothing in the test waits on the real
one, so a busy machine cannot make time pass between two lines."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass
class ManualClock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
