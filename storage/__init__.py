"""Postgres is the source of truth: settings, sessions, models, queries, embedded servers.

The transaction rule: query functions never commit; the caller owns the transaction
(`Database.transaction()`), and the few hot paths that use autocommit single statements are
listed, with why, in one place: the docstring of storage/database.py.
"""
