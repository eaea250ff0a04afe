"""Who this console process serves: the local user, or an SSH client of `--serve-ssh`.

`console/ssh/server.py` starts one console process per SSH connection and says so in the process's
environment (it builds that environment itself; nothing the client sends reaches it). The
console reads it once at start (`Session.from_env`).

Invariant: these variables only ever narrow what a console may do (fewer palette commands, the
reason a read-only console gives). Whether a console is read-only is decided by its
`--read-only` flag alone, so a console started without them is never more capable. The
operator an SSH key maps to (`operator=`) is resolved by storage to a role, never above viewer
for a read-only session, and with no operators in the database the process acts as the
deployment did before roles (console.data.acting, storage.queries.operators).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

SSH_KEY_ENV = "CREATORDECK_SSH_KEY"  # the key's name: set for every SSH session
READ_ONLY_REASON_ENV = "CREATORDECK_READ_ONLY_REASON"  # why an SSH session is read-only
SSH_OPERATOR_ENV = "CREATORDECK_SSH_OPERATOR"  # the key's `operator=` option, when it has one
LOCAL_READ_ONLY_REASON = "started with --read-only"


@dataclass(frozen=True, slots=True)
class Session:
    ssh_key: str | None = None  # None: a local console
    read_only_reason: str = LOCAL_READ_ONLY_REASON
    operator: str | None = None  # an SSH key's `operator=` option
    ssh_read_only: bool = False  # the SSH server made this session read-only

    @property
    def over_ssh(self) -> bool:
        return self.ssh_key is not None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Session:
        key = env.get(SSH_KEY_ENV)  # present, even empty: an SSH session
        reason = env.get(READ_ONLY_REASON_ENV) or LOCAL_READ_ONLY_REASON
        return cls(
            ssh_key=key,
            read_only_reason=reason,
            operator=env.get(SSH_OPERATOR_ENV) if key is not None else None,
            ssh_read_only=key is not None and bool(env.get(READ_ONLY_REASON_ENV)),
        )
