"""The Audit screen's read model: who changed what and when, before and after, filtered.

Reads storage.queries.audit_log: a window of WINDOW_ROWS entries (newest first) at the scroll
position, and how many match in all (the table's length: it never caps). A refresh costs two
index reads (migration 0011_versions indexes the log by entity and by actor).

Filters are typed into the screen's `/` bar as words, all of which must match:
`actor:NAME` (or `@NAME`), `KIND:ID` for an entity (`region:DETROIT_METRO`, `post:42`,
`experiment:onboarding`; `KIND:` alone for every entity of a kind), and a bare word that is
an actor or an entity id. Anything else is refused with what is allowed (AuditFilterError).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from storage.database import Database
from storage.models import AuditEntry
from storage.queries import audit_log
from storage.queries.audit_log import AuditFilter
from storage.user_error import UserError

__all__ = ["AuditFilter"]  # for screens (they import no storage)

WINDOW_ROWS = 200
# The kinds of entity the console's edits audit (storage.queries.*: entity=...).
ENTITY_KINDS = (
    "alert",
    "connection",
    "creator",
    "dead_letter",
    "experiment",
    "post",
    "publication",
    "region",
    "tracking_credential",
)
VALUE_CHARS = 48  # a value in a change line is cut here (the detail pane is a few lines)


class AuditFilterError(ValueError, UserError):
    title = "audit filter"


@dataclass(frozen=True, slots=True)
class AuditRow:
    id: int
    at: datetime
    actor: str
    action: str
    entity: str
    entity_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None

    @property
    def changes(self) -> tuple[str, ...]:
        return change_lines(self.before, self.after)


@dataclass(frozen=True, slots=True)
class AuditView:
    rows: tuple[AuditRow, ...]  # rows[0] is entry number `offset` of the list, newest first
    offset: int
    total: int
    where: AuditFilter


def parse_filter(text: str) -> AuditFilter:
    """The filter typed in the bar (module docstring); AuditFilterError when it cannot be."""
    fields: dict[str, str | None] = {}

    def put(name: str, value: str) -> None:
        if fields.get(name) not in (None, value):
            raise AuditFilterError(f"two values for {name}: {fields[name]!r} and {value!r}")
        fields[name] = value

    for word in text.split():
        kind, colon, value = word.partition(":")
        if word.startswith("@") and len(word) > 1:
            put("actor", word[1:])
        elif not colon:
            put("word", word)
        elif kind.lower() in ("actor", "by") and value:
            put("actor", value)
        elif kind.lower() in ENTITY_KINDS:
            put("entity", kind.lower())
            if value:
                put("entity_id", value)
        else:
            kinds = ", ".join(ENTITY_KINDS)
            raise AuditFilterError(
                f"{word!r}: filter by actor:NAME, KIND:ID (KIND one of {kinds}) or a word"
            )
    return AuditFilter(**fields)


def filter_text(where: AuditFilter) -> str:
    """The bar's text for a filter (what `a` and `o` put there)."""
    words = []
    if where.actor:
        words.append(f"actor:{where.actor}")
    if where.entity:
        words.append(f"{where.entity}:{where.entity_id or ''}")
    if where.word:
        words.append(where.word)
    return " ".join(words)


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= VALUE_CHARS else text[: VALUE_CHARS - 1] + "…"


def change_lines(before: dict[str, Any] | None, after: dict[str, Any] | None) -> tuple[str, ...]:
    """What changed, one line per field, in the order the fields were stored:
    `field: old → new` for an update, `+ field: value` for a create (or an action's details),
    `- field: value` for a delete (empty fields left out); unchanged fields are left out."""
    if before is None and after is None:
        return ()
    if before is None:  # a create: its fields that have a value
        return tuple(f"+ {k}: {_short(v)}" for k, v in (after or {}).items() if v is not None)
    if after is None:
        return tuple(f"- {k}: {_short(v)}" for k, v in before.items() if v is not None)
    keys = list(before) + [k for k in after if k not in before]
    return tuple(
        f"{k}: {_short(before.get(k))} → {_short(after.get(k))}"
        for k in keys
        if before.get(k) != after.get(k)
    )


def _row(entry: AuditEntry) -> AuditRow:
    return AuditRow(
        id=entry.id,
        at=entry.at,
        actor=entry.actor,
        action=entry.action,
        entity=entry.entity,
        entity_id=entry.entity_id,
        before=entry.before,
        after=entry.after,
    )


async def load_audit(db: Database, where: AuditFilter, offset: int = 0) -> AuditView:
    """The window of WINDOW_ROWS entries from `offset` (newest first), and the total."""
    async with db.session() as session:
        total = await audit_log.count_entries(session, where)
        offset = max(0, min(offset, total - WINDOW_ROWS))
        entries = await audit_log.list_entries(session, where, offset=offset, limit=WINDOW_ROWS)
    return AuditView(tuple(_row(e) for e in entries), offset, total, where)
