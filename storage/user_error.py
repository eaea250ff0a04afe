"""The one error base class a person can act on: every refusal of bad input or of an edit that
cannot be made subclasses `UserError`, so the console (and the CLI) catch one type and show its
`title` and message, and anything else is a bug shown as one.

It lives in storage because storage imports nothing of ours: its validation errors (schedules,
regions, posts, experiments, keys) subclass it, and engine and console import it from here.
Each subclass keeps its old builtin base too (ValueError, RuntimeError, ...), so code that caught
those still does.
"""

from __future__ import annotations

from typing import ClassVar


class UserError(Exception):
    """Bad input or an edit that cannot be made; the message says why, for the person who asked.

    `title` names the kind of refusal in a word or two ("invalid schedule"), for a notification
    title or a log line; the message (str(exc)) is the precise reason.
    """

    title: ClassVar[str] = "not possible"
