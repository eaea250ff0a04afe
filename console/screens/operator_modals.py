"""Modals of the Operators screen: a new operator, a role, a new team, a team to join or leave,
an account's team, and the SSH keys. Keyboard only; each carries its own CSS.

Each form checks what is typed with the read model's checks (storage's own rules) and dismisses
only with values that passed; the screen writes them in a worker, where storage checks the role
and the values again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rich.markup import escape
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label, Static

from console.data import operators as data
from console.screens.checked_modal import CheckedModal


@dataclass(frozen=True, slots=True)
class NewOperator:
    name: str
    role: str
    os_user: str | None


@dataclass(frozen=True, slots=True)
class Assignment:
    connection_id: int
    team: str | None  # None: no team (admins only)


class OperatorFormModal(CheckedModal[NewOperator]):
    BINDINGS = [
        Binding("escape", "cancel", "cancel", id="operator_form.cancel"),
        Binding("ctrl+s", "save", "save", id="operator_form.save"),
    ]
    HEADING = "New operator"
    ENTER_MOVES_ON = True
    FIELDS = (
        ("name", "name", "e.g. ada (what the audit log shows)"),
        ("role", "role", "viewer, editor or admin"),
        ("os_user", "OS user", "optional: the login that acts as them"),
    )

    def __init__(self, known: set[str]) -> None:
        super().__init__({"role": "viewer"})
        self.known = known

    def check(self) -> str | None:
        return data.check_operator(
            self.value("name"), self.value("role"), self.value("os_user"), self.known
        )

    def result(self) -> NewOperator:
        return NewOperator(self.value("name"), self.value("role"), self.value("os_user") or None)


class TeamFormModal(CheckedModal[str]):
    BINDINGS = [
        Binding("escape", "cancel", "cancel", id="team_form.cancel"),
        Binding("ctrl+s", "save", "save", id="team_form.save"),
    ]
    HEADING = "New team"
    ENTER_MOVES_ON = True
    FIELDS = (("team", "team", "e.g. detroit"),)

    def __init__(self, known: set[str]) -> None:
        super().__init__()
        self.known = known

    def check(self) -> str | None:
        return data.check_team(self.value("team"), self.known)

    def result(self) -> str:
        return self.value("team")


class PickTeamModal(CheckedModal[str]):
    """One team out of a list (to join, or to leave)."""

    BINDINGS = [
        Binding("escape", "cancel", "cancel", id="pick_team.cancel"),
        Binding("ctrl+s", "save", "save", id="pick_team.save"),
    ]
    ENTER_MOVES_ON = True
    FIELDS = (("team", "team", "one of the teams listed below"),)

    def __init__(self, title: str, teams: list[str]) -> None:
        listed = "teams: " + (", ".join(teams) if teams else "none")
        super().__init__(choices=listed)
        self.HEADING = title
        self.teams = teams

    def check(self) -> str | None:
        team = self.value("team")
        if not team:
            return "team: required"
        return None if team in self.teams else f"team: one of {', '.join(self.teams) or 'none'}"

    def result(self) -> str:
        return self.value("team")


class AssignModal(CheckedModal[Assignment]):
    """Give an account (a connection, by id) to a team, or to no team."""

    BINDINGS = [
        Binding("escape", "cancel", "cancel", id="assign.cancel"),
        Binding("ctrl+s", "save", "save", id="assign.save"),
    ]
    HEADING = "Account's team"
    ENTER_MOVES_ON = True
    FIELDS = (
        ("account", "account #", "an account id listed below"),
        ("team", "team", "a team, or - for no team (admins only)"),
    )

    def __init__(self, accounts: tuple[data.AccountRow, ...], teams: list[str]) -> None:
        lines = [f"#{a.id} {a.platform} {a.display_name} → {a.team or '-'}" for a in accounts]
        lines.append("teams: " + (", ".join(teams) if teams else "none"))
        first = str(accounts[0].id) if accounts else ""
        super().__init__({"account": first}, choices="\n".join(lines))
        self.accounts = {a.id: a for a in accounts}
        self.teams = teams

    def check(self) -> str | None:
        account, team = self.value("account"), self.value("team")
        if not account.isdigit() or int(account) not in self.accounts:
            return "account #: one of the ids listed"
        if not team:
            return "team: a team, or - for no team"
        if team != "-" and team not in self.teams:
            return f"team: one of {', '.join(self.teams) or 'none'}, or -"
        return None

    def result(self) -> Assignment:
        team = self.value("team")
        return Assignment(int(self.value("account")), None if team == "-" else team)


class RoleModal(ModalScreen[str | None]):
    """Pick a role with one key."""

    DEFAULT_CSS = """
    RoleModal .roles { margin-top: 1; }
    """
    BINDINGS = [
        Binding("v", "pick('viewer')", "viewer", id="role.viewer"),
        Binding("e", "pick('editor')", "editor", id="role.editor"),
        Binding("a", "pick('admin')", "admin", id="role.admin"),
        Binding("escape", "pick('')", "cancel", id="role.cancel"),
    ]

    def __init__(self, name: str, role: str) -> None:
        super().__init__()
        self.operator, self.role = name, role

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="role-dialog"):
            yield Label(f"[b]Role of {escape(self.operator)}[/] (now {escape(self.role)})")
            yield Label(
                "[b]v[/] viewer: reads, edits nothing\n"
                "[b]e[/] editor: operations, and their teams' posts\n"
                "[b]a[/] admin: everything, and operators and teams",
                classes="roles",
            )
            yield Label("[b]esc[/] cancel", classes="hint")

    def action_pick(self, role: str) -> None:
        self.dismiss(role if role and role != self.role else None)


def _key_cells(row: data.KeyRow) -> tuple[str | Text, ...]:
    if row.problem is not None:
        status = Text(row.problem, style="bold red")
    else:
        flags = ["read-only" if row.read_only else "edits by role"]
        if row.origin:
            flags.append(f"from {row.origin}")
        status = Text(", ".join(flags), style="yellow" if row.read_only else "")
    operator = Text(row.operator) if row.operator else Text("(none: viewer)", style="dim")
    return (str(row.line_no), row.name, operator, status)


class KeysModal(ModalScreen[None]):
    """The SSH keys of the authorised keys file and the operator each acts as (read-only: the
    file is edited by hand, and re-read at every login)."""

    # Not the shared `.dialog` class: the app's stylesheet (which wins over DEFAULT_CSS) fixes
    # its width at 72, and a key line needs the terminal's width.
    DEFAULT_CSS = """
    KeysModal #keys-dialog {
        width: 100%; max-width: 118; height: auto; max-height: 100%;
        padding: 0 1; border: round $accent; background: $surface;
    }
    KeysModal #keys { height: auto; max-height: 14; }
    KeysModal .keys-path { color: $text-muted; }
    KeysModal #key-detail { height: auto; margin-top: 1; }
    KeysModal .hint { margin-top: 1; color: $text-muted; }
    """
    BINDINGS = [Binding("escape", "close", "close", id="keys.close")]

    def __init__(self, view: data.OperatorsView, known: Callable[[str], bool]) -> None:
        super().__init__()
        self.view = view
        self.known = known

    def compose(self) -> ComposeResult:
        view = self.view
        with Vertical(id="keys-dialog"):
            yield Label(f"[b]SSH keys[/] ({len(view.keys)})")
            yield Static(str(view.keys_path), classes="keys-path", markup=False)
            table: DataTable[str | Text] = DataTable(id="keys", cursor_type="row")
            for label, width in (("#", 3), ("Key", 14), ("Operator", 14), ("Access", 40)):
                table.add_column(label, width=width)
            yield table
            yield Static(id="key-detail", markup=False)
            yield Label(self._summary(), classes="hint")

    def _summary(self) -> str:
        view = self.view
        if view.keys_error:
            return f"[b red]cannot read the file:[/] {escape(view.keys_error)}"
        if not view.keys:
            return "no keys: nobody can log in over SSH · [b]esc[/] close"
        unknown = sorted(
            {k.operator for k in view.keys if k.operator and not self.known(k.operator)}
        )
        note = f"[yellow]no operator {escape(', '.join(unknown))}: viewer[/] · " if unknown else ""
        return f'{note}map a key: operator="NAME" before it on its line · [b]esc[/] close'

    def on_mount(self) -> None:
        table = self.query_one("#keys", DataTable)
        for row in self.view.keys:
            table.add_row(*_key_cells(row))
        table.focus()
        self._show_key()

    @on(DataTable.RowHighlighted)
    def _show_key(self) -> None:
        table = self.query_one("#keys", DataTable)
        keys = self.view.keys
        row = keys[table.cursor_row] if 0 <= table.cursor_row < len(keys) else None
        detail = "" if row is None else f"line {row.line_no} · {row.fingerprint or 'no key'}"
        if row is not None and row.problem:
            detail += f"\n{row.problem}"
        self.query_one("#key-detail", Static).update(detail)

    def action_close(self) -> None:
        self.dismiss(None)
