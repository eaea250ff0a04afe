"""Job arguments fit to show on a screen: secret-sounding values and token-like strings hidden.

Our jobs carry ids, not secrets (DESIGN: secrets never in job arguments), but a future job must
not leak one on the Queues screen. Cost: one walk of the arguments, at most 6 levels deep and
20 items per list, per job shown.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "<redacted>"
_SECRET_NAMES = re.compile(
    r"token|secret|passw|api[_-]?key|authori[sz]ation|cookie|credential|private|signature",
    re.IGNORECASE,
)
_TOKENISH = re.compile(r"^[A-Za-z0-9_\-.=+/]{32,}$")


_PLAIN = (int, float, bool, type(None))
SHOWN_ITEMS = 20  # a list longer than this shows its first items and how many more


def redact(value: Any, _depth: int = 0) -> Any:
    """Job arguments fit to show: values under secret-sounding names and token-like strings are
    replaced. Our jobs carry ids, not secrets, but a future job must not leak one on screen."""
    if type(value) in _PLAIN:
        return value
    if _depth > 6:
        return "…"
    if isinstance(value, dict):
        return {
            k: REDACTED if _SECRET_NAMES.search(str(k)) else redact(v, _depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        items = [redact(v, _depth + 1) for v in value[:SHOWN_ITEMS]]
        if len(value) > SHOWN_ITEMS:
            items.append(f"…+{len(value) - SHOWN_ITEMS}")
        return tuple(items) if isinstance(value, tuple) else items
    if isinstance(value, str):
        if value[:7].lower().startswith(("bearer ", "basic ")):
            return REDACTED
        if (
            _TOKENISH.match(value)
            and any(c.isdigit() for c in value)
            and any(c.isalpha() for c in value)
        ):
            return REDACTED
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return value


def describe_call(function: str, args: Iterable[Any], kwargs: Mapping[str, Any]) -> str:
    parts = [repr(a) for a in redact(tuple(args))]
    parts += [f"{k}={v!r}" for k, v in redact(dict(kwargs)).items()]
    text = f"{function}({', '.join(parts)})"
    return text if len(text) <= 500 else text[:499] + "…"
