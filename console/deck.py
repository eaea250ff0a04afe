"""What screens, widgets and read models need from the console app: `Deck`, a Protocol.

Screens reach the app as `self.deck` (a cast of `self.app` to this Protocol), not as
`console.app.CreatordeckApp`: console.app imports every screen to register it, so a screen that
named the app class, even only for typing, would close an import cycle (lint-imports forbids it).
CreatordeckApp satisfies this Protocol; mypy checks that where the app passes itself on.
"""

from __future__ import annotations

from typing import Protocol

from arq.connections import ArqRedis

from engine.console_presence import ConsoleIdentity
from storage.clock import Clock
from storage.database import Database
from storage.settings import Settings


class Deck(Protocol):
    settings: Settings
    read_only: bool
    db: Database  # connects lazily; one per app
    now: Clock  # every "now" of the console; tests freeze it
    presence: ConsoleIdentity  # this console, as the Overview's list of consoles names it

    async def queue_pool(self) -> ArqRedis:
        """The arq Redis pool, connected on first use; raises when Redis is away."""
        ...

    def refuse_read_only(self, verb: str) -> bool:
        """True (and a notice saying why) when the console may not `verb`."""
        ...

    async def open_screen(self, name: str, argument: str | None = None) -> None:
        """Jump to a registered screen by name, passing it `argument`."""
        ...
