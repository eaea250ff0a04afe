"""Postgres is the source of truth: settings, sessions, models, queries, embedded servers."""
