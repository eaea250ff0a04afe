"""Alerts: one table of conditions (conditions.py) from which Prometheus rules (rules.py) and
the console's own evaluation (facts.py + evaluate.py) are both made."""
