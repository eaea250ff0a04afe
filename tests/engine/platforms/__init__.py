"""Tests of engine/platforms/."""
