"""The maths: pure functions of numbers and strings, no I/O, nothing of ours imported.

Experiment statistics (tests compare them to scipy) and GrowthBook's bucketing hash.

Modules:

- `hashing.py`: GrowthBook's deterministic bucketing, so any GrowthBook SDK picks the same
  variant.
- `stats.py`: Per-variant statistics of a conversion experiment, in plain Python (tests compare
  to scipy).
"""
