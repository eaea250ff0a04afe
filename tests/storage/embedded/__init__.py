"""Tests of storage/embedded/."""
