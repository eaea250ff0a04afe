"""Tests of engine/alerts/."""
