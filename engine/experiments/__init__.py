"""Experiments: sticky assignment and the rollup jobs (statistics are in engine.maths).

Modules:

- `assignment.py`: Sticky assignment: a stored variant wins; a unit without one is bucketed the
  GrowthBook way.
- `rollups.py`: Rollup jobs: daily metrics, per-experiment metrics and funnels over a window of
  days.
"""
