"""The console's own settings file: key bindings and theme.

Location: `$CREATORDECK_CONSOLE_CONFIG`, else `$XDG_CONFIG_HOME/creatordeck/console.toml`
(`~/.config/creatordeck/console.toml`). Optional; TOML:

    theme = "creatordeck"            # or "creatordeck-light", or a Textual theme ("nord", …)

    [keys]                           # binding id = key, or several keys separated by commas
    "queues.delete" = "delete"
    "runs.cycle_status" = "S"
    "app.quit" = "ctrl+q"

Binding ids are listed by `?` in each screen's help; every binding that can be remapped has
one (`<screen>.<action>`, `app.*` for the global keys). A bad entry is reported in the console
(a notification on start) and skipped; the console always starts.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from textual.binding import Binding, BindingType
from textual.dom import DOMNode

ENV_VAR = "CREATORDECK_CONSOLE_CONFIG"
# A key as Textual names it: a character, a name (f5, pageup, question_mark), with modifiers.
_KEY = re.compile(r"^((ctrl|shift|alt|super|meta)\+)*([a-z0-9_]+|[!-~])$", re.IGNORECASE)


def config_path() -> Path:
    explicit = os.environ.get(ENV_VAR)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "creatordeck" / "console.toml"


@dataclass(frozen=True)
class ConsoleConfig:
    path: Path
    keys: dict[str, str] = field(default_factory=dict)
    theme: str | None = None
    errors: tuple[str, ...] = ()


def binding_ids(bindings: Iterable[BindingType]) -> set[str]:
    return {b.id for b in bindings if isinstance(b, Binding) and b.id}


def console_binding_ids(package: str = "console") -> set[str]:
    """Every binding id of every screen, modal and widget class defined in `package`.

    Walks the classes Python has loaded (the app module imports every screen, and each screen
    its modals), so a new modal's keys can be remapped without registering it anywhere.
    """
    ids: set[str] = set()
    pending: list[type[DOMNode]] = [DOMNode]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__module__.split(".")[0] == package:
            ids |= binding_ids(cls.__dict__.get("BINDINGS", ()))
    return ids


def load_config(known_ids: set[str], path: Path | None = None) -> ConsoleConfig:
    """Read the file (absent: defaults). Unknown ids and malformed keys are errors, skipped."""
    path = path or config_path()
    if not path.is_file():
        return ConsoleConfig(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return ConsoleConfig(path, errors=(f"{path}: {exc}; using the default keys",))
    errors: list[str] = []
    theme = raw.get("theme")
    if theme is not None and not isinstance(theme, str):
        errors.append(f'{path}: theme must be a string like "creatordeck"')
        theme = None
    keys: dict[str, str] = {}
    table = raw.get("keys", {})
    if not isinstance(table, dict):
        errors.append(f'{path}: [keys] must be a table of "binding.id" = "key"')
        table = {}
    for binding_id, value in table.items():
        if binding_id not in known_ids:
            close = sorted(i for i in known_ids if i.split(".")[0] == binding_id.split(".")[0])
            more = ", …" if len(close) > 4 else ""
            hint = f" (ids there: {', '.join(close[:4])}{more}; see ? help)" if close else ""
            errors.append(f"{path}: no binding {binding_id!r}{hint}")
            continue
        if not isinstance(value, str) or not value.strip():
            errors.append(f'{path}: {binding_id} = {value!r}: expected a key such as "ctrl+d"')
            continue
        names = [k.strip() for k in value.split(",")]
        bad = [k for k in names if not _KEY.match(k)]
        if bad:
            errors.append(f"{path}: {binding_id}: {', '.join(map(repr, bad))} is not a key name")
            continue
        keys[binding_id] = ",".join(names)
    unknown = set(raw) - {"theme", "keys"}
    if unknown:
        errors.append(f"{path}: unknown setting(s) {', '.join(sorted(unknown))}")
    return ConsoleConfig(path, keys, theme, tuple(errors))


def remapped(bindings: Iterable[BindingType], keymap: dict[str, str]) -> list[BindingType]:
    """Bindings as the keymap makes them (for the help, which lists class-level bindings)."""
    out: list[BindingType] = []
    for binding in bindings:
        if isinstance(binding, Binding) and binding.id and binding.id in keymap:
            keys = keymap[binding.id]
            out.append(replace(binding, key=keys, key_display=None if "," in keys else keys))
        else:
            out.append(binding)
    return out


def help_rows(bindings: Iterable[BindingType], keymap: dict[str, str]) -> list[tuple[str, str]]:
    """(keys, what it does [binding id]) for the `?` help: the id is what the file remaps."""
    rows = []
    for binding in remapped(bindings, keymap):
        if not isinstance(binding, Binding) or not binding.description:
            continue
        keys = binding.key_display or ", ".join(binding.key.split(","))
        text = binding.tooltip or binding.description
        rows.append((keys, f"{text} [{binding.id}]" if binding.id else text))
    return rows
