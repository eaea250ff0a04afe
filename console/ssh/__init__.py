"""`creatordeck console --serve-ssh`: the console for SSH clients, one process per
connection, and who a console process serves (read by the app).

Modules:

- `authorized_keys.py`: Who may open a console over SSH: the authorised keys file of `console
  --serve-ssh`.
- `server.py`: `creatordeck console --serve-ssh HOST:PORT`: the console for SSH clients
  (asyncssh).
- `session.py`: Who this console process serves: the local user, or an SSH client of
  `--serve-ssh`.
"""
