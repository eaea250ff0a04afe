"""Experiments: GrowthBook-compatible assignment hashing, statistics, and rollups."""
