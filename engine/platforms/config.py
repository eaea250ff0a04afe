"""Reading the tracking settings' quota strings (the settings are `Settings.tracking`)."""

from __future__ import annotations


def parse_quota(text: str) -> tuple[int, int]:
    """ "300/900" → (300 calls, per 900 seconds)."""
    calls, _, seconds = text.partition("/")
    try:
        parsed = int(calls), int(seconds or "1")
    except ValueError as exc:
        raise ValueError(f"quota {text!r} is not CALLS/SECONDS, e.g. 300/900") from exc
    if parsed[0] < 1 or parsed[1] < 1:
        raise ValueError(f"quota {text!r} must be positive")
    return parsed
