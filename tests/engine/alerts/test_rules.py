"""The Prometheus rules: generated from the conditions table, and each one fires and clears
under `promtool test rules` with input series made for it.

The cases below are the test: per condition, series that make its expression hold and not
hold, and the minutes at which the alert must be firing and must be quiet (`for` included).
The expected annotations come from the same table the rules do, so a wording change needs no
edit here, but an expression that stops matching its series fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from engine import metrics
from engine.alerts import rules
from engine.alerts.conditions import BY_NAME, CONDITIONS, summary_of


def test_committed_rules_are_the_generated_ones() -> None:
    assert rules.RULES_FILE.read_text(encoding="utf-8") == rules.render(), (
        "deploy/prometheus/alerts.yml is stale: run python -m engine.alerts.rules --write"
    )


def test_rules_file_has_one_rule_per_condition_with_runbook() -> None:
    parsed = yaml.safe_load(rules.render())
    found = parsed["groups"][0]["rules"]
    assert [r["alert"] for r in found] == [c.name for c in CONDITIONS]
    for r in found:
        condition = BY_NAME[r["alert"]]
        assert r["expr"] == condition.promql()
        assert r["labels"] == {"severity": condition.severity.value}
        assert r["annotations"]["runbook"] == condition.runbook


@dataclass(frozen=True)
class Case:
    alert: str
    series: dict[str, str]
    firing: tuple[int, ...]  # minutes at which it must fire
    quiet: tuple[int, ...]  # ... and must not
    labels: dict[str, str] = field(default_factory=dict)


ENGINE = 'job="creatordeck-engine",instance="engine-1:9108"'

CASES = [
    Case(
        "RegionFireTimeMissed",
        {f"creatordeck_regions_overdue{{{ENGINE}}}": "0 0 0 1 1 0"},
        firing=(3, 4),
        quiet=(0, 2, 5),
    ),
    Case(
        "TickFailureRate",
        {
            'creatordeck_ticks_total{outcome="ok"}': "0+10x60",
            'creatordeck_ticks_total{outcome="failed"}': "0x19 0+5x40",
            'creatordeck_ticks_total{outcome="skipped"}': "0+100x60",
        },
        firing=(40, 55),
        quiet=(10, 19, 26),
    ),
    Case(
        "TickLagHigh",
        {
            # Lag under a second for 20 minutes, then every tick 60-120 s late.
            'creatordeck_tick_lag_seconds_bucket{le="1"}': "0+10x19 190x40",
            'creatordeck_tick_lag_seconds_bucket{le="60"}': "0+10x19 190x40",
            'creatordeck_tick_lag_seconds_bucket{le="120"}': "0+10x60",
            'creatordeck_tick_lag_seconds_bucket{le="+Inf"}': "0+10x60",
        },
        firing=(30, 45),
        quiet=(10, 19, 23),
    ),
    Case(
        "TickRunningLong",
        {f"creatordeck_tick_oldest_running_seconds{{{ENGINE}}}": "0 100 800 960 1020 0"},
        firing=(3, 4),
        quiet=(0, 1, 2, 5),
    ),
    Case(
        "PublishFailures",
        {
            'creatordeck_publish_results_total{outcome="published"}': "0+5x40",
            'creatordeck_publish_results_total{outcome="failed"}': "0 0 0 1x40",
        },
        firing=(4, 10),
        quiet=(0, 2, 35),
    ),
    Case(
        "PublishOutcomeUnknown",
        {f"creatordeck_publications_unknown{{{ENGINE}}}": "0 0 2 2 0"},
        firing=(2, 3),
        quiet=(0, 1, 4),
    ),
    Case(
        "BreakerOpenLong",
        {
            f'creatordeck_breaker_open{{platform="mock",{ENGINE}}}': "0 0 1 0.5 1 1 1 1 1 1 0 0",
            f'creatordeck_breaker_open{{platform="x",{ENGINE}}}': "0x12",
        },
        firing=(7, 9),
        quiet=(1, 5, 10),
        labels={"platform": "mock"},
    ),
    Case(
        "QuotaNearlyUsed",
        {
            f'creatordeck_quota_used_ratio{{platform="mock",{ENGINE}}}': "0.5 0.95 0.95 0.95 0.5",
            f'creatordeck_quota_used_ratio{{platform="x",{ENGINE}}}': "0.2x5",
        },
        firing=(3,),
        quiet=(0, 1, 2, 4),
        labels={"platform": "mock"},
    ),
    Case(
        "DeadLettersGrowing",
        {f"creatordeck_dead_letters_recent{{{ENGINE}}}": "0 0 3 3 0"},
        firing=(2, 3),
        quiet=(0, 1, 4),
    ),
    Case(
        "EngineReplicaGone",
        # Alive, then its replica gauge says 0 (the last replica reports none alive).
        {
            f"up{{{ENGINE}}}": "1x10",
            f"creatordeck_engine_replicas{{{ENGINE}}}": "1 1 1 0 0 0 0 1 1",
        },
        firing=(4, 6),
        quiet=(0, 2, 3, 7),
    ),
    Case(
        "EngineReplicaGone",
        # Two replicas scraped; one stops answering its scrape.
        {
            f"up{{{ENGINE}}}": "1x10",
            'up{job="creatordeck-engine",instance="engine-2:9108"}': "1 1 0 0 0 1 1",
            f"creatordeck_engine_replicas{{{ENGINE}}}": "2 2 1 1 1 2 2",
        },
        firing=(3, 4),
        quiet=(0, 1, 2, 5),
    ),
    Case(
        "PostgresUnreachable",
        {
            f'creatordeck_dependency_up{{dependency="postgres",{ENGINE}}}': "1 1 0 0 0 0 1",
            f'creatordeck_dependency_up{{dependency="redis",{ENGINE}}}': "1x7",
        },
        firing=(3, 5),
        quiet=(0, 1, 2, 6),
    ),
    Case(
        "RedisUnreachable",
        {
            f'creatordeck_dependency_up{{dependency="redis",{ENGINE}}}': "1 1 0 0 0 0 1",
            f'creatordeck_dependency_up{{dependency="postgres",{ENGINE}}}': "1x7",
        },
        firing=(3, 5),
        quiet=(0, 1, 2, 6),
    ),
    Case(
        "EventRejectionRate",
        {
            'creatordeck_events_total{outcome="accepted"}': "0+100x60",
            'creatordeck_events_total{outcome="duplicate"}': "0+10x60",
            'creatordeck_events_total{outcome="refused"}': "0+1x19 20+50x40",
        },
        firing=(35, 50),
        quiet=(10, 19, 22),
    ),
    Case(
        "TokenExpiring",
        {
            f'creatordeck_token_expires_in_seconds{{platform="x",{ENGINE}}}': (
                "400000 300000 200000 100000"
            ),
            f'creatordeck_token_expires_in_seconds{{platform="youtube",{ENGINE}}}': (
                "900000 890000 880000 870000"
            ),
        },
        firing=(2, 3),
        quiet=(0, 1),
        labels={"platform": "x"},
    ),
]


def test_every_condition_has_a_promtool_case() -> None:
    assert {case.alert for case in CASES} == set(BY_NAME)
    for case in CASES:
        assert case.firing and case.quiet, case.alert


def _unit_test(case: Case) -> dict[str, object]:
    condition = BY_NAME[case.alert]
    expected = [
        {
            "exp_labels": {"severity": condition.severity.value, **case.labels},
            "exp_annotations": {
                "summary": summary_of(condition),
                "runbook": condition.runbook,
            },
        }
    ]
    checks = [{"eval_time": f"{m}m", "alertname": case.alert, "exp_alerts": []} for m in case.quiet]
    checks += [
        {"eval_time": f"{m}m", "alertname": case.alert, "exp_alerts": expected} for m in case.firing
    ]
    return {
        "interval": "1m",
        "input_series": [{"series": s, "values": v} for s, v in case.series.items()],
        "alert_rule_test": sorted(checks, key=lambda c: int(str(c["eval_time"])[:-1])),
    }


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(".ci/run installs promtool (Debian's prometheus package); it is missing")
        pytest.skip("promtool not installed (apt-get install prometheus; .ci/run does it)")
    return found


def test_promtool_checks_the_rules() -> None:
    result = subprocess.run(
        [promtool(), "check", "rules", str(rules.RULES_FILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_rule_fires_and_stays_quiet_under_promtool(tmp_path: Path) -> None:
    tool = promtool()
    (tmp_path / "alerts.yml").write_text(rules.render(), encoding="utf-8")
    tests = {
        "rule_files": ["alerts.yml"],
        "evaluation_interval": "1m",
        "tests": [_unit_test(case) for case in CASES],
    }
    (tmp_path / "alerts_test.yml").write_text(yaml.safe_dump(tests, sort_keys=False))
    result = subprocess.run(
        [tool, "test", "rules", "alerts_test.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_config_loads_the_rules(tmp_path: Path) -> None:
    tool = promtool()
    for name in ("prometheus.yml", "alerts.yml"):
        shutil.copy(rules.RULES_FILE.parent / name, tmp_path / name)
    result = subprocess.run(
        [tool, "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "14 rules found" in result.stdout + result.stderr


def test_committed_dashboard_is_the_generated_one() -> None:
    import importlib.util

    path = rules.RULES_FILE.parents[1] / "grafana" / "dashboard.py"
    spec = importlib.util.spec_from_file_location("creatordeck_dashboard", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.OUT.read_text(encoding="utf-8") == module.render(), (
        "deploy/grafana/dashboards/creatordeck.json is stale: "
        "run python deploy/grafana/dashboard.py --write"
    )
    titles = {panel["title"] for panel in json.loads(module.render())["panels"]}
    for wanted in (
        "Tick success rate",
        "Tick lag against schedule",
        "Quota use",
        "Publish outcomes",
        "Event ingestion",
        "RegionFireTimeMissed",
    ):
        assert wanted in titles


def test_the_calls_per_creator_panel_reads_counters_the_engine_exports() -> None:
    import importlib.util
    import re

    path = rules.RULES_FILE.parents[1] / "grafana" / "dashboard.py"
    spec = importlib.util.spec_from_file_location("creatordeck_dashboard_calls", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = json.loads(module.OUT.read_text(encoding="utf-8"))
    panel = next(p for p in committed["panels"] if p["title"] == "API calls per creator fetched")
    expr = panel["targets"][0]["expr"]
    metrics.PLATFORM_CALLS.labels("mock")  # a labelled series, so the exposition lists it
    metrics.FETCH_RESULTS.labels("mock", "fetched")
    exposed = metrics.exposition().decode()
    for name in re.findall(r"creatordeck_\w+", expr):
        assert f"\n{name}{{" in exposed, f"{name} is not exported by engine.metrics"
    assert "creatordeck_platform_calls_total" in expr
