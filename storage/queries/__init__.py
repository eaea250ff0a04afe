"""Queries per domain. Functions take an AsyncSession and commit nothing unless they say so."""
