"""Tests of engine/experiments/."""
