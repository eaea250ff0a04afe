"""Tests of engine/maths/."""
