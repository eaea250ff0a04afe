"""Dead letters: work that failed for good. Requeue or drop one, or all, after a confirm.

Requeue sends a fetch back to the queue (the creator becomes active again); success removes
the letter, a new failure makes it pending again with one more attempt. Drop deletes it (the
audit log keeps a copy).

The table is a VirtualTable: it fits its columns to its own width on every resize, the error
taking what the others leave (down to 10 cells), so a terminal widened or narrowed after the
screen opened still shows every column; the line under the table shows the error whole.
"""

from __future__ import annotations

from typing import ClassVar

from rich.markup import escape
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from console.data import creators as data
from console.data.creators import DeadLetter
from console.screens.live import LiveScreen
from console.widgets.formatting import when
from console.widgets.virtual_table import Column, VirtualTable

ERROR_CUT = 120  # the cell holds the error's first line up to this; the detail line the rest
COLUMNS = (
    Column("#", "id", 5),
    Column("Kind", "kind", 6),
    Column("What", "what", 18, shrink_to=12),
    Column("Tries", "attempts", 5),
    Column("State", "status", 8),
    Column("Last failed", "last", 11),
    # As wide as the cell can be; narrowed (first, being last) to what the others leave.
    Column("Error", "error", ERROR_CUT, shrink_to=10),
)


def letter_what(letter: DeadLetter) -> str:
    payload = letter.payload or {}
    platform = payload.get("platform")
    external = payload.get("external_id")
    if platform and external:
        return f"{platform}:{external}"
    return letter.dedupe_key


def letter_key(letter: DeadLetter) -> int:
    return letter.id


def letter_cells(letter: DeadLetter) -> tuple[Text | str, ...]:
    return (
        str(letter.id),
        letter.kind,
        letter_what(letter),
        str(letter.attempts),
        Text(letter.status, style="yellow" if letter.status == "requeued" else "red"),
        when(letter.last_failed_at),
        letter.error.splitlines()[0][:ERROR_CUT] if letter.error else "",
    )


class DeadLettersScreen(LiveScreen):
    TITLE = "Dead letters"
    refresh_s = 3.0

    BINDINGS: ClassVar = [
        Binding(
            "r",
            "requeue",
            "requeue",
            tooltip="requeue the selected letter (asks first)",
            id="deadletters.requeue",
        ),
        Binding(
            "R",
            "requeue_all",
            "requeue all",
            tooltip="requeue every pending letter",
            id="deadletters.requeue_all",
        ),
        Binding(
            "d",
            "drop",
            "drop",
            tooltip="drop the selected letter (asks first)",
            id="deadletters.drop",
        ),
        Binding(
            "D",
            "drop_all",
            "drop all",
            tooltip="drop every letter (asks first)",
            id="deadletters.drop_all",
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.letters: tuple[DeadLetter, ...] = ()
        self._signature: tuple[tuple[int, int, str], ...] = ()

    def compose_body(self) -> ComposeResult:
        yield VirtualTable(COLUMNS, letter_cells, letter_key, id="dead-letters")
        yield Static(" ", id="detail")

    async def fetch(self) -> tuple[DeadLetter, ...]:
        return await data.load_dead_letters(self.deck.db)

    def show(self, letters: tuple[DeadLetter, ...]) -> None:
        signature = tuple((x.id, x.attempts, x.status) for x in letters)
        if signature != self._signature:
            self._signature = signature
            self.letters = letters
            self.table.set_rows(letters)
        pending = sum(1 for x in letters if x.status == "pending")
        self.set_status(
            f"{len(letters)} letters, {pending} pending, {len(letters) - pending} requeued · "
            f"updated {self.deck.now():%H:%M:%S}"
        )
        self._show_detail()

    @property
    def table(self) -> VirtualTable[DeadLetter]:
        return self.query_one("#dead-letters", VirtualTable)

    def selected(self) -> DeadLetter | None:
        return self.table.row_at_cursor()

    @on(VirtualTable.RowHighlighted)
    def _show_detail(self) -> None:
        letter = self.selected()
        detail = self.query_one("#detail", Static)
        if letter is None:
            detail.update("no dead letters: every failure so far was retried successfully")
            return
        detail.update(
            f"[b]#{letter.id}[/] {escape(letter.dedupe_key)} · first failed "
            f"{when(letter.first_failed_at)} · {escape(letter.error[:160])}"
        )

    def action_requeue(self) -> None:
        letter = self._target("requeue")
        if letter is not None:
            what = escape(letter_what(letter))
            self.confirm(
                f"Requeue dead letter [b]#{letter.id}[/] ({what})?",
                lambda: self._requeue([letter.id]),
            )

    def action_requeue_all(self) -> None:
        if self.deck.refuse_read_only("requeue"):
            return
        pending = sum(1 for x in self.letters if x.status == "pending")
        self.confirm(
            f"Requeue [b]all {pending}[/] pending dead letters?", lambda: self._requeue(None)
        )

    def action_drop(self) -> None:
        letter = self._target("drop")
        if letter is not None:
            what = escape(letter_what(letter))
            self.confirm(
                f"Drop dead letter [b]#{letter.id}[/] ({what})? It will not be retried.",
                lambda: self._drop([letter.id]),
            )

    def action_drop_all(self) -> None:
        if self.deck.refuse_read_only("drop"):
            return
        self.confirm(
            f"Drop [b]all {len(self.letters)}[/] dead letters? None will be retried.",
            lambda: self._drop(None),
        )

    def _target(self, verb: str) -> DeadLetter | None:
        if self.deck.refuse_read_only(verb):
            return None
        letter = self.selected()
        if letter is None:
            self.notify(f"no dead letter to {verb}", severity="warning")
        return letter

    @work(group="edit", exit_on_error=False)
    async def _requeue(self, ids: list[int] | None) -> None:
        async def write() -> int:
            redis = await self.deck.queue_pool()
            return await data.requeue_letters(self.deck.db, redis, self.deck.settings, ids)

        await self.run_edit(
            write(), failed="not requeued", done=lambda count: f"{count} letter(s) requeued"
        )

    @work(group="edit", exit_on_error=False)
    async def _drop(self, ids: list[int] | None) -> None:
        await self.run_edit(
            data.drop_letters(self.deck.db, ids),
            failed="not dropped",
            done=lambda count: f"{count} letter(s) dropped",
        )
