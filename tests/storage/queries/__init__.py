"""Tests of storage/queries/."""
