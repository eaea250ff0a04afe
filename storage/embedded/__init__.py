"""Embedded Postgres and Redis in DATA_DIR, for when no URL is set (demo, tests, a laptop).

Real servers, not fakes; the processes that use them hold leases and the last one out
stops them. `environment.resolve()` picks the given URLs or these servers.

Modules:

- `environment.py`: Resolve where Postgres and Redis are: the URLs given, or the embedded
  servers in DATA_DIR.
- `leases.py`: Leases on the embedded servers of one DATA_DIR: the last creatordeck process out
  stops them.
- `servers.py`: Embedded Postgres (pgserver) and Redis (redis-server) in a data folder, for when
  no URL is set.
"""
