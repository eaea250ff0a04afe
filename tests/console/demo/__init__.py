"""Tests of console/demo/."""
