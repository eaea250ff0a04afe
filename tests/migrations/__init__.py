"""Tests of migrations/."""
