"""Tests of engine/resilience/."""
