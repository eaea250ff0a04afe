"""The creatordeck console: a keyboard-only Textual app that works at 80x24 over SSH.

Layout (as in posting and harlequin): `console/app.py` (this file: the app, global keys and the
screen registry), `console/screens/` (one module per screen, plus the modals they open),
`console/widgets/` (pieces shared by screens), `console/creatordeck.tcss` (the look), and
`console/data/common.py` (the read model: what screens show, loaded through `storage.queries` and
the engine's queue modules; the console runs no SQL and no Redis command of its own).

Adding a screen (the extension point)
-------------------------------------
1. Write `console/screens/<name>.py` with a subclass of `console.screens.live.LiveScreen`:
   set `TITLE`, `BINDINGS` (each `Binding` with a description: `?` help lists them), yield the
   body in `compose_body()`, load in `async fetch()` (it runs in a worker, only while the
   screen is on top, never twice at once, backing off on errors) and draw in `show(data)`.
   Put the loading and edit functions in `console/data/common.py` (or `console/data/<name>.py`, the
   screen's read model); they call `storage.queries.*` / `engine.*`, never SQL or Redis
   directly, and a screen imports no storage module (lint-imports checks). Edits check
   `self.deck.refuse_read_only("verb")` first, then a `@work(group="edit")` method awaits
   `self.run_edit(read_model_write(...), failed=..., done=...)`: refusals raise a
   `storage.user_error.UserError`. Screens reach the app as `self.deck` (console.deck.Deck),
   never by importing this module.
2. Register it with ONE line in `CONSOLE_SCREENS` below:

       ConsoleScreen("creators", "creators and their follower stats", CreatorsScreen),

   The name is what `:` command mode completes and jumps to (`:creators`), and what the
   ctrl+p palette offers as "Go to creators". Every registered screen is a Textual mode with
   its own screen stack, so jumping back and forth keeps each screen's cursor and filters.
   `open_screen(name, argument)` jumps from code; a screen with a `set_argument(arg)` method
   receives what follows the name (`:runs DETROIT_METRO`).

Global keys: `:` command mode, `?` help, `ctrl+p` palette, `esc` back, `q` quit. A read-only
console, and any console served over SSH (console.ssh.session), keeps only SAFE_SYSTEM_COMMANDS of
Textual's palette commands: nothing there writes on the server. Any binding with an id can be
remapped, and the theme chosen, in the console's settings file
(`~/.config/creatordeck/console.toml`; see console/keymap.py).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from arq.connections import ArqRedis
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from console import heap
from console.data import presence
from console.data.acting import header_label, serve_read_only
from console.keymap import console_binding_ids, help_rows, load_config
from console.screens.alerts import AlertsScreen
from console.screens.audit import AuditScreen
from console.screens.command import CommandBar
from console.screens.connections import ConnectionsScreen
from console.screens.creators import CreatorsScreen
from console.screens.dead_letters import DeadLettersScreen
from console.screens.experiments import ExperimentsScreen
from console.screens.help import HelpModal
from console.screens.operators import OperatorsScreen
from console.screens.overview import OverviewScreen
from console.screens.posts import PostsScreen
from console.screens.queues import QueuesScreen
from console.screens.regions import RegionsScreen
from console.screens.runs import RunsScreen
from console.screens.timeline import TimelineScreen
from console.ssh.session import Session
from console.themes import DEFAULT_THEME, THEMES
from engine import queues
from storage.clock import Clock, utc_now
from storage.database import Database
from storage.settings import Settings


@dataclass(frozen=True, slots=True)
class ConsoleScreen:
    name: str  # the command-mode name: `:name`
    description: str
    screen: Callable[[], Screen[Any]]


# The screens of the console, in the order `:` and ctrl+p list them. One line per screen.
CONSOLE_SCREENS: list[ConsoleScreen] = [
    ConsoleScreen("overview", "engine, queues, next runs, failures, platforms", OverviewScreen),
    ConsoleScreen("regions", "schedules, next runs, last run; edit, pause, run now", RegionsScreen),
    ConsoleScreen("runs", "the tick ledger: status, lag, duration, error", RunsScreen),
    ConsoleScreen(
        "timeline", "next 24 h of fire times: heat per hour, busiest minutes", TimelineScreen
    ),
    ConsoleScreen("creators", "creators: followers, change, growth, chart", CreatorsScreen),
    ConsoleScreen("deadletters", "dead letters: requeue or drop", DeadLettersScreen),
    ConsoleScreen("queues", "arq queues: jobs, detail, retry, abort, delete", QueuesScreen),
    ConsoleScreen(
        "posts", "posts: list/week, compose, schedule, cancel, retry, resolve", PostsScreen
    ),
    ConsoleScreen(
        "connections", "platform accounts: status, token expiry, breaker", ConnectionsScreen
    ),
    ConsoleScreen(
        "experiments", "A/B tests: traffic, SRM, leader; start, pause, weights", ExperimentsScreen
    ),
    ConsoleScreen("alerts", "alert conditions: state, since, runbook; silence", AlertsScreen),
    ConsoleScreen("audit", "who changed what and when, before and after; filter", AuditScreen),
    ConsoleScreen("operators", "operators, roles, teams, SSH keys; admins edit", OperatorsScreen),
]
LANDING_SCREEN = "overview"
# What the palette may offer a read-only or SSH console: look, move, leave. Textual's others
# (Screenshot writes an SVG into this machine's ~/Downloads) are dropped, and so is any new one
# until it is judged and added here.
SAFE_SYSTEM_COMMANDS = frozenset({"Theme", "Keys", "Maximize", "Minimize", "Quit"})


class CreatordeckApp(App[None]):
    CSS_PATH = Path(__file__).with_name("creatordeck.tcss")  # absolute: subclasses live elsewhere
    TITLE = "creatordeck"
    ENABLE_COMMAND_PALETTE = True
    MODES: ClassVar[dict[str, str | Callable[[], Screen[Any]]]] = {
        entry.name: entry.screen for entry in CONSOLE_SCREENS
    }
    DEFAULT_MODE: ClassVar[str] = LANDING_SCREEN

    BINDINGS: ClassVar = [
        Binding(
            "colon",
            "command",
            "go",
            key_display=":",
            tooltip="command mode: jump to a screen",
            id="app.command",
        ),
        Binding(
            "question_mark", "help", "help", key_display="?", tooltip="this help", id="app.help"
        ),
        Binding(
            "ctrl+p",
            "command_palette",
            "palette",
            show=False,
            tooltip="command palette",
            id="app.palette",
        ),
        Binding(
            "escape",
            "back",
            "back / close / clear filter",
            show=False,
            key_display="esc",
            id="app.back",
        ),
        Binding("q", "quit", "quit", id="app.quit"),
    ]

    def __init__(
        self,
        settings: Settings,
        read_only: bool = False,
        clock: Clock | None = None,
        landing: str = LANDING_SCREEN,
        config_file: Path | None = None,
        session: Session | None = None,
    ) -> None:
        # The first screen: the Overview, unless asked otherwise (tests written for Regions).
        self.DEFAULT_MODE = landing  # type: ignore[misc]
        super().__init__()
        self.settings = settings
        self.read_only = read_only
        # Local, or an SSH client of `--serve-ssh` (which says so in our environment).
        self.session = session or Session.from_env(os.environ)
        # Who this console is in the Overview's list of attached consoles (it beats while on).
        self.presence = presence.identity(self.session)
        # Every "now" of the console (screens, validation of what is typed, what edits write)
        # comes from this clock; tests freeze it (storage.clock).
        self.now: Clock = clock or utc_now
        self.db = Database(settings, pool_size=2, max_overflow=2)
        self._redis: ArqRedis | None = None
        self._redis_lock = asyncio.Lock()
        self._mode_history: list[str] = []
        # Key bindings and theme from the console's settings file (console.keymap). The keymap
        # is set before anything mounts, so the first footer already shows the remapped keys.
        self.config = load_config(self.known_binding_ids(), config_file)
        if self.config.keys:
            self.set_keymap(self.config.keys)

    @property
    def screen_names(self) -> dict[str, str]:
        return {entry.name: entry.description for entry in CONSOLE_SCREENS}

    # Services: one Database (created above; connects lazily) and one arq pool (on first use).

    async def queue_pool(self) -> ArqRedis:
        """The arq Redis pool, connected on first use; a failure is raised to the caller's
        refresh loop, which shows it and retries with backoff."""
        async with self._redis_lock:
            if self._redis is None:
                self._redis = await queues.connect(self.settings, retries=0)
            return self._redis

    def known_binding_ids(self) -> set[str]:
        """The ids a keymap entry may name: the app's, every screen's, modal's and widget's."""
        return console_binding_ids()

    def on_load(self) -> None:
        # First thing in the app's own task, before any screen or worker exists (they inherit
        # it): storage then sees a read-only console as a viewer, as a read-only SSH key.
        serve_read_only(self.read_only)

    def on_mount(self) -> None:
        for theme in THEMES:
            self.register_theme(theme)
        wanted = self.config.theme or DEFAULT_THEME
        if wanted not in self.available_themes:
            self.notify(
                f"{self.config.path}: no theme {wanted!r}; using {DEFAULT_THEME}",
                severity="warning",
            )
            wanted = DEFAULT_THEME
        self.theme = wanted
        for error in self.config.errors:
            self.notify(error, title="console settings", severity="warning", timeout=10)
        self.sub_title = self.settings.redis_prefix
        self.run_worker(self._show_operator(), group="operator", exit_on_error=False)
        self.run_worker(
            presence.keep_attached(self.queue_pool, self.settings, self.presence),
            group="presence",
            exit_on_error=False,
        )
        # Once the landing screen is built: keep full GCs of the start-up heap off the UI loop.
        self.set_timer(1.0, heap.freeze_startup_heap)

    async def _show_operator(self) -> None:
        """Who you are and your role, in the header (once operators exist)."""
        label = await header_label(self.db)
        if label is not None:
            self.sub_title = f"{self.settings.redis_prefix} · {label}"

    async def on_unmount(self) -> None:
        heap.release()
        if self._redis is not None:
            await presence.leave(self._redis, self.settings, self.presence)
            await self._redis.aclose()
            self._redis = None
        await self.db.dispose()

    # Read-only mode.

    def refuse_read_only(self, verb: str) -> bool:
        """True (after saying so) when this console may not `verb`."""
        if self.read_only:
            self.notify(
                f"read-only console: cannot {verb} ({self.session.read_only_reason})",
                title="refused",
                severity="warning",
            )
        return self.read_only

    @property
    def restricted(self) -> bool:
        """Read-only or over SSH: offer nothing that writes on this machine (files, edits)."""
        return self.read_only or self.session.over_ssh

    def action_screenshot(self, filename: str | None = None, path: str | None = None) -> None:
        # Also reachable from `@click` markup, not only the palette: refuse where restricted.
        if self.restricted:
            self.notify("screenshots are not saved from this console", severity="warning")
            return
        super().action_screenshot(filename, path)

    # Navigation.

    async def open_screen(self, name: str, argument: str | None = None) -> None:
        if name not in self.screen_names:
            self.notify(f"no screen {name!r}: try {', '.join(self.screen_names)}", severity="error")
            return
        if name != self.current_mode:
            self._mode_history.append(self.current_mode)
            await self.switch_mode(name)
        setter = getattr(self.screen, "set_argument", None)
        if callable(setter):
            setter(argument)

    def action_command(self) -> None:
        commands = dict(self.screen_names)
        commands["quit"] = "leave the console"

        async def run(command: str | None) -> None:
            if not command:
                return
            name, _, argument = command.partition(" ")
            name = name.lower()
            if name in ("q", "quit"):
                self.exit()
                return
            matches = [n for n in self.screen_names if n.startswith(name)]
            target = (
                name if name in self.screen_names else (matches[0] if len(matches) == 1 else name)
            )
            await self.open_screen(target, argument.strip() or None)

        self.push_screen(CommandBar(commands), run)

    def action_help(self) -> None:
        screen = self.screen
        if isinstance(screen, HelpModal):
            return
        title = getattr(screen, "TITLE", "") or type(screen).__name__
        if self.read_only:
            title += " (read-only: edit keys refuse)"
        keymap = self.config.keys
        screen_keys = help_rows(type(screen).BINDINGS, keymap)
        global_keys = help_rows(self.BINDINGS, keymap)
        self.push_screen(HelpModal(title, screen_keys, global_keys))

    async def action_back(self) -> None:
        if len(self.screen_stack) > 1:
            self.pop_screen()
        elif self._mode_history:
            await self.switch_mode(self._mode_history.pop())

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        for command in super().get_system_commands(screen):
            if not self.restricted or command.title in SAFE_SYSTEM_COMMANDS:
                yield command
        for name, description in self.screen_names.items():

            async def go(target: str = name) -> None:
                await self.open_screen(target)

            yield SystemCommand(f"Go to {name}", description, go)
