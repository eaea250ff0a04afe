"""Postgres is the source of truth: settings, sessions, models, queries per domain.

The transaction rule: query functions never commit; the caller owns the transaction
(`Database.transaction()`), and the few hot paths that use autocommit single statements are
listed, with why, in one place: the docstring of storage/database.py.

- `models/`, `queries/`: tables, and the query functions (they never commit).
- `embedded/`: embedded Postgres and Redis for when no URL is set.

Imports nothing of ours.
"""
