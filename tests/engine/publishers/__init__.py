"""Tests of engine/publishers/."""
