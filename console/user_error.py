"""The console's one user-facing error type, re-exported for screens (which import no storage
module): see storage.user_error. Read models raise it (or a subclass) for input a person must fix.
"""

from __future__ import annotations

from storage.user_error import UserError

__all__ = ["UserError"]
