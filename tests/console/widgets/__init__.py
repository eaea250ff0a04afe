"""Tests of console/widgets/."""
