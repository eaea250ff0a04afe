"""Tests, one folder per package they test (tests/console, tests/engine, ...)."""
