"""Tests of console/cli/."""
