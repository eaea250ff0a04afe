"""Tests of console/screens/."""
