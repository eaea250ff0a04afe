"""Operators: who may edit what. Operators (role, teams, OS user, SSH keys) and teams (members,
accounts); admins add operators and teams, change roles and members, give accounts to teams.

Everyone sees the screen; only admins edit, and that is storage's decision, not this screen's:
a non-admin's edit key asks storage (console.data.operators.check_admin) and shows its refusal,
and every write is checked again in its own transaction (storage.queries.operators). Forms check
what is typed before they dismiss; the write happens in a worker, through `run_edit`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from rich.markup import escape
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Label, Static

from console.data import operators as data
from console.screens.live import LiveScreen, row_at_cursor
from console.screens.operator_modals import (
    Assignment,
    AssignModal,
    KeysModal,
    NewOperator,
    OperatorFormModal,
    PickTeamModal,
    RoleModal,
    TeamFormModal,
)
from console.widgets.formatting import count

# Fixed widths that fit 80 columns (an auto-width column re-measured after `clear()` can lose
# its last character); a longer value is cut, and the detail line under the tables shows it.
OPERATOR_COLUMNS = (("Name", 12), ("Role", 7), ("Teams", 16), ("OS user", 10), ("SSH keys", 24))
TEAM_COLUMNS = (("Team", 14), ("Members", 28), ("Accounts", 30))
ROLE_STYLE = {"admin": "bold magenta", "editor": "cyan", "viewer": "dim"}


def _listed(items: tuple[str, ...] | list[str], empty: str = "-") -> Text:
    return Text(", ".join(items)) if items else Text(empty, style="dim")


class OperatorsScreen(LiveScreen):
    TITLE = "Operators"
    refresh_s = 10.0

    DEFAULT_CSS = """
    OperatorsScreen #operators { height: 1fr; }
    OperatorsScreen #teams { height: 1fr; }
    OperatorsScreen .section { height: 1; padding: 0 1; color: $text-muted; }
    OperatorsScreen #operator-detail { height: auto; padding: 0 1; text-wrap: nowrap; }
    """

    BINDINGS: ClassVar = [
        Binding("a", "add_operator", "add operator", tooltip="a new operator", id="operators.add"),
        Binding("r", "role", "role", tooltip="the selected operator's role", id="operators.role"),
        Binding("t", "add_team", "new team", tooltip="a new team", id="operators.add_team"),
        Binding(
            "m",
            "join",
            "join team",
            tooltip="the selected operator joins a team",
            id="operators.join",
        ),
        Binding(
            "x",
            "leave",
            "leave team",
            tooltip="the selected operator leaves a team",
            id="operators.leave",
        ),
        Binding(
            "c",
            "assign",
            "account's team",
            tooltip="give an account (connection) to a team",
            id="operators.assign",
        ),
        Binding(
            "k",
            "keys",
            "SSH keys",
            tooltip="which SSH key acts as which operator",
            id="operators.keys",
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.view: data.OperatorsView | None = None

    def compose_body(self) -> ComposeResult:
        operators: DataTable[Text | str] = DataTable(
            id="operators", cursor_type="row", zebra_stripes=True
        )
        for label, width in OPERATOR_COLUMNS:
            operators.add_column(label, width=width)
        yield operators
        yield Label("Teams", classes="section")
        teams: DataTable[Text | str] = DataTable(id="teams", cursor_type="row", zebra_stripes=True)
        for label, width in TEAM_COLUMNS:
            teams.add_column(label, width=width)
        yield teams
        yield Static(" ", id="operator-detail")

    async def fetch(self) -> data.OperatorsView:
        return await data.load(self.deck.db, data.authorized_keys_path())

    def show(self, view: data.OperatorsView) -> None:
        if view != self.view:
            self.view = view
            self._fill(view)
        admins = sum(1 for o in view.operators if o.role == "admin")
        mode = (
            "may edit"
            if view.is_admin and not self.deck.read_only
            else "[yellow]read-only: only admins edit[/]"
        )
        keys = "[b red]keys unreadable[/]" if view.keys_error else count(len(view.keys), "key")
        self.set_status(
            f"{count(len(view.operators), 'operator')} ({admins} admin) · "
            f"{count(len(view.teams), 'team')} · {keys} · {escape(view.me)} {mode} · "
            f"{self.deck.now():%H:%M:%S}"
        )
        self._show_detail()

    def _fill(self, view: data.OperatorsView) -> None:
        table = self.query_one("#operators", DataTable)
        cursor = table.cursor_row
        table.clear()
        for op in view.operators:
            keys = [k.name for k in view.keys_of(op.name)]
            table.add_row(
                op.name,
                Text(op.role, style=ROLE_STYLE.get(op.role, "bold red")),
                _listed(op.teams),
                op.os_user or Text("-", style="dim"),
                _listed(keys),
                key=op.name,
            )
        if view.operators:
            table.move_cursor(row=min(max(cursor, 0), len(view.operators) - 1))
        accounts = {a.id: a for a in view.accounts}
        teams = self.query_one("#teams", DataTable)
        team_cursor = teams.cursor_row
        teams.clear()
        for team in view.teams:
            owned = [
                f"#{i} {accounts[i].display_name}" if i in accounts else f"#{i}"
                for i in team.connection_ids
            ]
            teams.add_row(
                team.name, _listed(team.members), _listed(owned, "no accounts"), key=team.name
            )
        if view.teams:
            teams.move_cursor(row=min(max(team_cursor, 0), len(view.teams) - 1))

    def selected(self) -> data.OperatorRow | None:
        if self.view is None:
            return None
        return row_at_cursor(self.query_one("#operators", DataTable), self.view.operators)

    @on(DataTable.RowHighlighted, "#operators")
    def _show_detail(self) -> None:
        detail = self.query_one("#operator-detail", Static)
        view, op = self.view, self.selected()
        if view is None:
            return
        if op is None:
            detail.update(
                "no operators yet, so everyone acts as admin; `a` adds the first one "
                "(an admin, with your OS user)"
            )
            return
        keys = view.keys_of(op.name)
        ro = sum(1 for k in keys if k.read_only)
        names = f": {', '.join(k.name for k in keys)}" if keys else ""
        teams = ", ".join(op.teams) or "-"
        detail.update(
            f"[b]{escape(op.name)}[/] {escape(op.role)} · teams {escape(teams)}"
            f" · OS user {escape(op.os_user or '-')} · "
            f"{count(len(keys), 'SSH key')}{f' ({ro} read-only)' if ro else ''}{escape(names)}"
        )

    # Edits: refused for a read-only console first, then by storage for a non-admin.

    def _may(self, what: str) -> bool:
        """False (after saying why) when this console or operator may not `what`."""
        if self.deck.refuse_read_only(what):
            return False
        if self.view is None:
            self.notify("still loading", severity="warning")
            return False
        if not self.view.is_admin:
            self._refused(what)  # storage says why, in the words the write would use
            return False
        return True

    @work(group="edit", exit_on_error=False)
    async def _refused(self, what: str) -> None:
        await self.run_edit(
            data.check_admin(self.deck.db, what),
            failed="refused",
            done=lambda _: f"you may {what} now (your role changed): press the key again",
        )

    @work(group="edit", exit_on_error=False)
    async def _write(self, write: Callable[[], Awaitable[str]], failed: str) -> None:
        await self.run_edit(write(), failed=failed, done=lambda line: line)

    def _open(self, modal: Any, then: Callable[[Any], object]) -> None:
        def dismissed(result: Any) -> None:
            if result is not None:
                then(result)

        self.app.push_screen(modal, dismissed)

    def action_add_operator(self) -> None:
        if not self._may(data.ADD_OPERATORS) or self.view is None:
            return
        known = {o.name for o in self.view.operators}

        def write(new: NewOperator) -> None:
            db = self.deck.db
            self._write(lambda: data.add_operator(db, new.name, new.role, new.os_user), "not added")

        self._open(OperatorFormModal(known), write)

    def action_role(self) -> None:
        op = self.selected()
        if not self._may(data.CHANGE_ROLES):
            return
        if op is None:
            self.notify("no operator selected", severity="warning")
            return
        db = self.deck.db
        self._open(
            RoleModal(op.name, op.role),
            lambda role: self._write(lambda: data.set_role(db, op.name, role), "not changed"),
        )

    def action_add_team(self) -> None:
        if not self._may(data.ADD_TEAMS) or self.view is None:
            return
        db = self.deck.db
        self._open(
            TeamFormModal({t.name for t in self.view.teams}),
            lambda name: self._write(lambda: data.add_team(db, name), "not added"),
        )

    def _member(self, join: bool) -> None:
        op = self.selected()
        if not self._may(data.CHANGE_TEAMS) or self.view is None:
            return
        if op is None:
            self.notify("no operator selected", severity="warning")
            return
        db = self.deck.db
        if join:
            teams = [t.name for t in self.view.teams if t.name not in op.teams]
            modal = PickTeamModal(f"{op.name} joins", teams)
            self._open(
                modal,
                lambda team: self._write(lambda: data.add_member(db, team, op.name), "not joined"),
            )
        else:
            modal = PickTeamModal(f"{op.name} leaves", list(op.teams))
            self._open(
                modal,
                lambda team: self._write(lambda: data.remove_member(db, team, op.name), "not left"),
            )

    def action_join(self) -> None:
        self._member(join=True)

    def action_leave(self) -> None:
        self._member(join=False)

    def action_assign(self) -> None:
        if not self._may(data.ASSIGN_ACCOUNTS) or self.view is None:
            return
        if not self.view.accounts:
            self.notify("no accounts yet: connect one on Connections", severity="warning")
            return
        db = self.deck.db

        def write(change: Assignment) -> None:
            self._write(
                lambda: data.assign_account(db, change.connection_id, change.team), "not assigned"
            )

        self._open(AssignModal(self.view.accounts, [t.name for t in self.view.teams]), write)

    def action_keys(self) -> None:
        view = self.view
        if view is None:
            self.notify("still loading", severity="warning")
            return
        names = {o.name for o in view.operators}
        self.app.push_screen(KeysModal(view, names.__contains__))
