"""Queries per domain. Functions take an AsyncSession and never commit: the caller owns the
transaction (`Database.transaction()`; exceptions listed in storage/database.py).
tests/storage/test_transaction_rule.py enforces it."""
