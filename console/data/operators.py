"""The Operators screen's read model: operators, teams, accounts and the SSH keys that map to
operators; and the admin edits (storage.queries.operators).

Invariants: every edit resolves the acting operator in its own transaction and storage refuses
a non-admin (`PermissionDenied`, the same words whether asked early by `check_admin` or at the
write); what a form sends is checked here as it is typed (`check_*`, storage's own rules) and
again by storage. The SSH keys are read from the file the SSH server reads
(`CREATORDECK_AUTHORIZED_KEYS`, else console.ssh.server's default), line by line as the server
judges them (console.ssh.authorized_keys.option_problem): the screen shows, the server decides.

Cost of a load: one read transaction of four small queries (operators, teams, accounts, who is
acting) plus one read of the keys file in a thread (a public-key import per word pair of each
line until its key is found).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

from console.data.acting import Identity, acting
from storage.database import Database
from storage.models import Role
from storage.permissions import require
from storage.queries import operators as q
from storage.queries.operators import (
    ADD_OPERATORS,
    ADD_TEAMS,
    ASSIGN_ACCOUNTS,
    CHANGE_ROLES,
    CHANGE_TEAMS,
    AccountRow,
    OperatorError,
    OperatorRow,
    TeamRow,
)

__all__ = [
    "ADD_OPERATORS",
    "ADD_TEAMS",
    "ASSIGN_ACCOUNTS",
    "CHANGE_ROLES",
    "CHANGE_TEAMS",
    "ROLES",
    "AccountRow",
    "KeyRow",
    "OperatorRow",
    "OperatorsView",
    "TeamRow",
]

AUTHORIZED_KEYS_ENV = "CREATORDECK_AUTHORIZED_KEYS"
ROLES = tuple(role.value for role in Role)  # viewer, editor, admin


def authorized_keys_path() -> Path:
    """The file `console --serve-ssh` reads (its `--authorized-keys` is passed on in the
    environment to the consoles it starts)."""
    from console.ssh.server import DEFAULT_AUTHORIZED_KEYS  # asyncssh: see _key_row

    explicit = os.environ.get(AUTHORIZED_KEYS_ENV)
    return Path(explicit).expanduser() if explicit else DEFAULT_AUTHORIZED_KEYS


@dataclass(frozen=True, slots=True)
class KeyRow:
    """One line of the keys file, as the server would judge it."""

    line_no: int
    name: str  # the key's comment, or "line N"
    fingerprint: str  # SHA256:…, or "" when the line does not parse
    operator: str | None  # the `operator=` option
    read_only: bool
    origin: str  # the `from=` patterns, "" for anywhere
    problem: str | None  # why the server refuses or skips this line; None: it lets it in


@dataclass(frozen=True, slots=True)
class OperatorsView:
    me: str  # "name (role)" of whoever is at the keyboard
    is_admin: bool
    operators: tuple[OperatorRow, ...]
    teams: tuple[TeamRow, ...]
    accounts: tuple[AccountRow, ...]
    keys: tuple[KeyRow, ...]
    keys_path: Path
    keys_error: str | None  # the file could not be read (absent: no SSH keys at all)

    def keys_of(self, operator: str) -> tuple[KeyRow, ...]:
        return tuple(k for k in self.keys if k.operator == operator and k.problem is None)


def _options(prefix: str) -> dict[str, object]:
    """OpenSSH key options (`a,b="x y",c`) as asyncssh returns them: a flag is True, a value
    is a list of its occurrences. Raises ValueError on an unbalanced quote."""
    options: dict[str, object] = {}
    current, quoted, escaped = "", False, False

    def add(option: str) -> None:
        if not option:
            return
        name, has_value, value = option.partition("=")
        if has_value:
            values = options.setdefault(name, [])
            if isinstance(values, list):
                values.append(value)
        else:
            options[name] = True

    for ch in prefix:
        if escaped:
            current, escaped = current + ch, False
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            add(current)
            current = ""
        else:
            current += ch
    if quoted or escaped:
        raise ValueError("unbalanced quote in options")
    add(current)
    return options


def _key_row(line_no: int, line: str) -> KeyRow:
    # Imported here, when the keys are read: asyncssh (and the crypto it loads) is ~24 MB of a
    # console's RSS that only the Operators screen's keys view needs (measured).
    import asyncssh

    from console.ssh.authorized_keys import OPERATOR_OPTION, READ_ONLY_OPTION, option_problem

    words = line.split()
    for i in range(len(words) - 1):
        try:
            key = asyncssh.import_public_key(f"{words[i]} {words[i + 1]}")
        except (ValueError, asyncssh.KeyImportError):
            continue
        name = " ".join(words[i + 2 :]) or f"line {line_no}"
        try:
            asyncssh.import_authorized_keys(line)  # what the server does first
            options = _options(" ".join(words[:i]))
        except (ValueError, asyncssh.KeyImportError) as exc:
            return KeyRow(line_no, name, key.get_fingerprint(), None, False, "", f"skipped: {exc}")
        operator = next(
            (
                str(v[0])
                for n, v in options.items()
                if n.lower() == OPERATOR_OPTION and isinstance(v, list) and v
            ),
            None,
        )
        origin = options.get("from")
        problem = option_problem(options)
        return KeyRow(
            line_no,
            name,
            key.get_fingerprint(),
            operator,
            any(n.lower() == READ_ONLY_OPTION for n in options),
            ",".join(str(o) for o in origin) if isinstance(origin, list) else "",
            None if problem is None else f"refused: {problem}",
        )
    return KeyRow(line_no, f"line {line_no}", "", None, False, "", "skipped: no public key")


def read_keys(path: Path) -> tuple[tuple[KeyRow, ...], str | None]:
    """Every key line of `path` (comments and blanks left out), and why the file could not be
    read, if so (an absent file is no error: nobody may log in over SSH)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return (), None
    except (OSError, UnicodeDecodeError) as exc:
        return (), f"{path}: {exc}"
    rows = []
    for line_no, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line and not line.startswith("#"):
            rows.append(_key_row(line_no, line))
    return tuple(rows), None


async def load(db: Database, keys_path: Path, who: Identity | None = None) -> OperatorsView:
    async with db.session() as session:
        me = await acting(session, who)
        operators = await q.list_operators(session)
        teams = await q.list_team_details(session)
        accounts = await q.list_accounts(session)
    # A file read and a key import per line: off the console's event loop.
    keys, keys_error = await asyncio.to_thread(read_keys, keys_path)
    return OperatorsView(
        me=f"{me.name} ({me.role})",
        is_admin=me.role is Role.ADMIN,
        operators=tuple(operators),
        teams=tuple(teams),
        accounts=tuple(accounts),
        keys=keys,
        keys_path=keys_path,
        keys_error=keys_error,
    )


# Checks as you type: storage's own rules, returned as the message (None: fine).


def check_operator(name: str, role: str, os_user: str, known: set[str]) -> str | None:
    try:
        q.check_name("name", name)
        if os_user:
            q.check_name("OS user", os_user)
    except OperatorError as exc:
        return str(exc)
    if name in known:
        return f"name: operator {name!r} already exists"
    if role not in ROLES:
        return f"role: one of {', '.join(ROLES)}"
    return None


def check_team(name: str, known: set[str]) -> str | None:
    try:
        q.check_name("team", name)
    except OperatorError as exc:
        return str(exc)
    return f"team {name!r} already exists" if name in known else None


# Edits: one transaction each, as the operator at the keyboard (resolved in it).


async def check_admin(db: Database, what: str, who: Identity | None = None) -> None:
    """Raise storage's refusal now if the operator at the keyboard may not `what` (the write
    checks again): a non-admin is told before typing a form the write would refuse."""
    async with db.session() as session:
        require(await acting(session, who), Role.ADMIN, what)


async def add_operator(
    db: Database, name: str, role: str, os_user: str | None, who: Identity | None = None
) -> str:
    async with db.transaction() as session:
        await q.add_operator(session, await acting(session, who), name, role, os_user)
    return f"operator {name} added as {role}"


async def set_role(db: Database, name: str, role: str, who: Identity | None = None) -> str:
    async with db.transaction() as session:
        await q.set_role(session, await acting(session, who), name, role)
    return f"{name} is now {role}"


async def add_team(db: Database, name: str, who: Identity | None = None) -> str:
    async with db.transaction() as session:
        await q.add_team(session, await acting(session, who), name)
    return f"team {name} added"


async def add_member(db: Database, team: str, operator: str, who: Identity | None = None) -> str:
    async with db.transaction() as session:
        await q.add_member(session, await acting(session, who), team, operator)
    return f"{operator} joined {team}"


async def remove_member(db: Database, team: str, operator: str, who: Identity | None = None) -> str:
    async with db.transaction() as session:
        await q.remove_member(session, await acting(session, who), team, operator)
    return f"{operator} left {team}"


async def assign_account(
    db: Database, connection_id: int, team: str | None, who: Identity | None = None
) -> str:
    async with db.transaction() as session:
        await q.set_connection_team(session, await acting(session, who), connection_id, team)
    return f"account {connection_id} belongs to {team or 'no team'}"
