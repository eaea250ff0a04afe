"""Experiments: sticky assignment and the rollup jobs (statistics are in engine.maths).

Modules:

- `assignment.py`: Sticky assignment: a stored variant wins; a unit without one is bucketed the
  GrowthBook way.
- `funnel_job.py`: The funnels job: per-unit progress rebuilt or patched, then each funnel's
  counts.
- `rollup_sessions.py`: Rollup reads spread over several sessions, and the progress callback
  every job reports to.
- `rollups.py`: Rollup jobs: daily metrics, per-experiment metrics and funnels over a window of
  days.
"""
