"""Who may open a console over SSH: the authorised keys file of `console --serve-ssh`.

OpenSSH format, one key per line, options before the key, parsed by asyncssh (quotes, escapes:
`environment="A=b c",read-only` is two options). Option names are case-insensitive where that
can only narrow what a key gets: our own option `read-only` (any case) makes that key's consoles
read-only; `from="10.0.0.*"` (lower case: asyncssh enforces only that spelling) limits the
client address. `operator="alice"` maps the key to the operator of that name (storage.queries.
operators: role and teams come from the database at each edit); a key without it, or naming
no operator, is a viewer once any operator exists (before that, the deployment has no roles and
the key acts as admin, as before). A read-only key is a viewer whatever its operator. An
unmapped key's comment names the person in the audit log (`ssh:<comment>`):

    operator="alice" ssh-ed25519 AAAAC3Nza... alice@laptop
    operator="bob",read-only ssh-ed25519 AAAAC3Nza... bob@phone
    read-only,from="127.0.0.1" ssh-ed25519 AAAAC3Nza... wallboard

Why an option and not a fingerprint table: this file already decides who gets in and with what
restrictions, read at every login; the mapping on the same line keeps one place to grant and
revoke (delete the line), with nothing in the database to drift from it. A line with more than
one `operator=` is refused (which one would be a guess).

Invariant, line by line and fail closed: a line whose options do not parse is skipped; a line
with an option this server cannot honour (`command=`, `expiry-time=`, `restrict`, `FROM=` that
asyncssh would not enforce, ...) refuses its key. Never is a key let in with fewer restrictions
than its line states. Either case is logged with the line number and the reason, never the key,
and the other lines keep working. Options that only forbid what this server never offers
(`no-port-forwarding`, `no-agent-forwarding`, `no-x11-forwarding`, `no-user-rc`) and
`environment=` (ignored, as sshd does by default) are accepted.

Cost: the server reads the file at every login (edits apply without a restart): one asyncssh
parse per line, and for the key that matched, one public-key import per word of its line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import asyncssh

from engine import logs

READ_ONLY_OPTION = "read-only"
OPERATOR_OPTION = "operator"  # operator="name": the operator this key acts as
# Options a line may carry. `from` must be spelled in lower case: asyncssh enforces only that
# spelling, so `FROM=` would be a restriction silently dropped (refused instead).
ENFORCED_OPTIONS = frozenset({"from"})
# Compared case-insensitively: each only narrows what a key gets, or is moot here (this server
# never forwards and runs no rc). Not `restrict`/`no-pty`: a console is a pty, so honouring
# them means refusing the key, which an unknown option already does.
HARMLESS_OPTIONS = frozenset(
    {
        READ_ONLY_OPTION,
        OPERATOR_OPTION,
        "environment",  # ignored, as sshd does unless PermitUserEnvironment
        "no-port-forwarding",
        "no-agent-forwarding",
        "no-x11-forwarding",
        "no-user-rc",
    }
)

log = logs.get("console.ssh.server")


@dataclass(frozen=True, slots=True)
class KeyLine:
    """One usable line of the file: its key and options, parsed by asyncssh."""

    line_no: int
    text: str
    keys: asyncssh.SSHAuthorizedKeys


@dataclass(frozen=True, slots=True)
class KeyEntry:
    """The line that let a client in, and what it grants."""

    line_no: int
    name: str  # the key's comment, or "line N"
    read_only: bool
    operator: str | None = None  # the `operator=` option: whom this key acts as


def load_authorized_keys(path: Path) -> list[KeyLine]:
    """The lines that parse; a bad line is logged (number and reason) and skipped."""
    entries = []
    text = path.read_text(encoding="utf-8")
    for line_no, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            keys = asyncssh.import_authorized_keys(line)
        except (ValueError, asyncssh.KeyImportError) as exc:
            # asyncssh's messages name the problem, not the key ("Unbalanced quote in options").
            log.warning("ssh.bad_authorized_key", file=str(path), line=line_no, error=str(exc))
            continue
        entries.append(KeyLine(line_no, line, keys))
    return entries


def option_problem(options: Mapping[str, object]) -> str | None:
    """Why a line's options cannot be honoured (its key is then refused), or None."""
    for name in options:
        if name in ENFORCED_OPTIONS or name.lower() in HARMLESS_OPTIONS:
            continue
        if name.lower() in ENFORCED_OPTIONS:
            return f"option {name!r} is not supported (write it in lower case: {name.lower()!r})"
        return f"option {name!r} is not supported"
    names = [v for n, v in options.items() if n.lower() == OPERATOR_OPTION]
    if len(names) > 1 or any(not isinstance(v, list) or len(v) != 1 for v in names):
        return "option 'operator' must appear once with one name"
    return None


def _operator(options: Mapping[str, object]) -> str | None:
    for name, value in options.items():
        if name.lower() == OPERATOR_OPTION and isinstance(value, list):
            return str(value[0])
    return None


def _comment(line: str, key: asyncssh.SSHKey) -> str:
    """The comment after `key` on its line ([options] type blob [comment]); the key is found
    by importing word pairs, so quoted options holding spaces cannot shift it."""
    words = line.split()
    for i in range(len(words) - 1):
        try:
            candidate = asyncssh.import_public_key(f"{words[i]} {words[i + 1]}")
        except (ValueError, asyncssh.KeyImportError):
            continue
        if candidate == key:
            return " ".join(words[i + 2 :])
    return ""


def match_key(lines: list[KeyLine], key: asyncssh.SSHKey, host: str, addr: str) -> KeyEntry | None:
    """The first line that lets `key` in from `addr`, as OpenSSH reads the file; a matching
    line whose options cannot be honoured is logged and passed over, never granted."""
    for line in lines:
        options = line.keys.validate(key, host, addr)
        if options is None:
            continue
        problem = option_problem(options)
        if problem is not None:
            log.warning("ssh.key_line_refused", line=line.line_no, reason=problem)
            continue
        read_only = any(name.lower() == READ_ONLY_OPTION for name in options)
        name = _comment(line.text, key) or f"line {line.line_no}"
        return KeyEntry(line.line_no, name, read_only, _operator(options))
    return None
