"""Tests of console/ssh/."""
