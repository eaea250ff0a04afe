"""Tests of console/data/."""
