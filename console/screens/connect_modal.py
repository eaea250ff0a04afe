"""Connect (or connect again) a platform account from the console, over SSH too: the OAuth
device flow shows a URL and a code to enter on any device and waits; X's PKCE flow shows a URL
and takes the pasted redirect. Keyboard only; esc cancels (nothing is saved).

The flow itself is engine.oauth.flow (the CLI's `connections connect` runs the same); this
modal only shows its steps. It dismisses with the one line to notify, or None.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from console.data.acting import Identity
from console.data.connect import (
    CONNECT_ERRORS,
    PLATFORMS,
    Clock,
    Database,
    Platform,
    Settings,
    save_connected,
)

if TYPE_CHECKING:
    from engine.oauth.flow import ConnectFlow
    from engine.oauth.pkce import PkceStart
    from engine.oauth.tokens import TokenSet


class ConnectModal(ModalScreen[str | None]):
    """Type a platform (or get one: connect again), follow the steps shown; esc cancels."""

    BINDINGS = [Binding("escape", "cancel", "cancel", id="connect.cancel")]
    DEFAULT_CSS = """
    ConnectModal #connect-steps { height: auto; padding: 1 0; }
    """

    def __init__(
        self,
        settings: Settings,
        db: Database,
        actor: Identity,
        clock: Clock,
        platform: str | None = None,
        account_id: str | None = None,
    ) -> None:
        super().__init__()
        self.clock = clock
        self.settings = settings
        self.db = db
        self.actor = actor
        self.platform = platform
        self.account_id = account_id
        self.pkce: PkceStart | None = None
        self.flow: ConnectFlow | None = None

    def compose(self) -> ComposeResult:
        title = "Connect again" if self.account_id else "Connect an account"
        with Vertical(classes="dialog"):
            yield Label(f"[b]{title}[/]")
            yield Input(self.platform or "", placeholder=PLATFORMS, id="connect-platform")
            # Says what comes next until the flow replaces it with its steps (never a blank gap).
            yield Static("[dim]enter: the steps to follow show here[/]", id="connect-steps")
            yield Input(
                "", placeholder="paste the address the browser ended on", id="connect-paste"
            )
            yield Label("[b]enter[/] go  [b]esc[/] cancel", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#connect-paste", Input).display = False
        if self.platform:
            self.query_one("#connect-platform", Input).disabled = True
            self.begin(self.platform)
        else:
            self.query_one("#connect-platform", Input).focus()

    def say(self, markup: str) -> None:
        self.query_one("#connect-steps", Static).update(markup)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "connect-platform":
            self.begin(event.value.strip().lower())
        elif event.input.id == "connect-paste" and self.pkce is not None:
            self.finish_pkce(event.value)

    def begin(self, name: str) -> None:
        try:
            platform = Platform(name)
        except ValueError:
            self.say(f"[b red]unknown platform[/] {escape(name)!r}: one of {PLATFORMS}")
            return
        self.query_one("#connect-platform", Input).disabled = True
        self.run_flow(platform)

    @work(group="connect", exclusive=True, exit_on_error=False)
    async def run_flow(self, platform: Platform) -> None:
        from engine.oauth.flow import ConnectFlow
        from engine.oauth.providers import Flow

        oauth = self.settings.oauth
        async with httpx.AsyncClient(timeout=oauth.timeout_s) as http:
            try:
                self.flow = ConnectFlow.for_platform(
                    platform, http, self.settings, clock=self.clock
                )
                if self.flow.provider.flow is Flow.PKCE:
                    self.pkce = self.flow.start_pkce(oauth.x_redirect_uri)
                    self.say(
                        "Open this URL anywhere, sign in and approve, then paste below the "
                        f"address the browser ended on (or the code):\n\n{escape(self.pkce.url)}"
                    )
                    paste = self.query_one("#connect-paste", Input)
                    paste.display = True
                    paste.focus()
                    return  # finish_pkce takes over on enter
                grant = await self.flow.start_device()
                self.say(
                    f"On any device, open [b]{escape(grant.verification_uri)}[/] and enter\n\n"
                    f"    [b reverse] {escape(grant.user_code)} [/]\n\n"
                    f"waiting for approval (every {grant.interval:g} s)…"
                )
                tokens = await self.flow.finish_device(grant)
                await self.save(tokens)
            except CONNECT_ERRORS as exc:
                self.say(f"[b red]not connected:[/] {escape(str(exc))}")

    @work(group="connect", exclusive=True, exit_on_error=False)
    async def finish_pkce(self, pasted: str) -> None:
        if self.flow is None or self.pkce is None:
            return

        async with httpx.AsyncClient(timeout=self.settings.oauth.timeout_s) as http:
            self.flow.http = http
            try:
                await self.save(await self.flow.finish_pkce(self.pkce, pasted))
            except CONNECT_ERRORS as exc:
                self.say(f"[b red]not connected:[/] {escape(str(exc))}")

    async def save(self, tokens: TokenSet) -> None:
        assert self.flow is not None
        line = await save_connected(
            self.settings, self.db, self.flow, tokens, self.account_id, self.actor
        )
        self.dismiss(line)

    def action_cancel(self) -> None:
        self.workers.cancel_group(self, "connect")
        self.dismiss(None)
