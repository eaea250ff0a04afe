"""Tests of engine/jobs/."""
