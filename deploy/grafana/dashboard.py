"""The creatordeck Grafana dashboard, generated with grafanalib (a dev dependency only).

    python deploy/grafana/dashboard.py           # print the JSON
    python deploy/grafana/dashboard.py --write   # write deploy/grafana/dashboards/creatordeck.json
    python deploy/grafana/dashboard.py --check   # exit 1 if the committed JSON is stale

Panels: tick success rate, lag against schedule, fetch throughput and API calls per platform,
quota use, breaker state, publish outcomes, event ingestion, queue-facing figures (overdue
regions, oldest running tick, dead letters, outcome-unknown posts, replicas). A row of the
alert conditions' own expressions comes from engine/alerts/conditions.py, so the dashboard
shows what the alerts judge.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from grafanalib._gen import DashboardEncoder
from grafanalib.core import Dashboard as GDashboard
from grafanalib.core import (
    GridPos,
    Stat,
    Target,
    Threshold,
    TimeSeries,
)

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from engine.alerts.conditions import CONDITIONS  # noqa: E402

OUT = Path(__file__).resolve().parent / "dashboards" / "creatordeck.json"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}


def series(title: str, exprs: list[tuple[str, str]], unit: str, x: int, y: int) -> TimeSeries:
    return TimeSeries(
        title=title,
        dataSource=DATASOURCE,
        targets=[
            Target(expr=e, legendFormat=legend, refId=chr(65 + i), datasource=DATASOURCE)
            for i, (e, legend) in enumerate(exprs)
        ],
        unit=unit,
        gridPos=GridPos(h=8, w=12, x=x, y=y),
    )


def panels() -> list[object]:
    rate = "[5m]"
    found: list[object] = [
        series(
            "Tick success rate",
            [
                (
                    f'sum(rate(creatordeck_ticks_total{{outcome="ok"}}{rate}))'
                    f' / sum(rate(creatordeck_ticks_total{{outcome=~"ok|failed"}}{rate}))',
                    "ok share",
                )
            ],
            "percentunit",
            0,
            0,
        ),
        series(
            "Tick lag against schedule",
            [
                (
                    f"histogram_quantile({q}, sum by (le) "
                    f"(rate(creatordeck_tick_lag_seconds_bucket{rate})))",
                    f"p{int(q * 100)}",
                )
                for q in (0.5, 0.99)
            ],
            "s",
            12,
            0,
        ),
        series(
            "Fetch throughput per platform",
            [
                (
                    f"sum by (platform, outcome) (rate(creatordeck_fetch_results_total{rate}))",
                    "{{platform}} {{outcome}}",
                )
            ],
            "ops",
            0,
            8,
        ),
        series(
            "Creators fetched per platform (share that failed)",
            [
                (
                    f'sum by (platform) (rate(creatordeck_fetch_results_total{{outcome="failed"}}'
                    f"{rate})) / clamp_min(sum by (platform) "
                    f"(rate(creatordeck_fetch_results_total{rate})), 1e-9)",
                    "{{platform}} failed share",
                )
            ],
            "percentunit",
            12,
            8,
        ),
        series(
            "Quota use",
            [("max by (platform) (creatordeck_quota_used_ratio)", "{{platform}}")],
            "percentunit",
            0,
            16,
        ),
        series(
            "Breaker state (1 open, 0.5 half-open)",
            [("max by (platform) (creatordeck_breaker_open)", "{{platform}}")],
            "short",
            12,
            16,
        ),
        series(
            "Publish outcomes",
            [
                (
                    f"sum by (outcome) (rate(creatordeck_publish_results_total{rate}))",
                    "{{outcome}}",
                )
            ],
            "ops",
            0,
            24,
        ),
        series(
            "Event ingestion",
            [(f"sum by (outcome) (rate(creatordeck_events_total{rate}))", "{{outcome}}")],
            "ops",
            12,
            24,
        ),
        series(
            "Queue-facing backlog",
            [
                ("max(creatordeck_regions_overdue)", "regions overdue"),
                ("max(creatordeck_dead_letters_pending)", "dead letters"),
                ("max(creatordeck_publications_unknown)", "outcome unknown"),
                ("max(creatordeck_tick_oldest_running_seconds) / 60", "oldest tick (min)"),
            ],
            "short",
            0,
            32,
        ),
        series(
            "Engine replicas and dependencies",
            [
                ("max(creatordeck_engine_replicas)", "replicas"),
                ("min by (dependency) (creatordeck_dependency_up)", "{{dependency}} up"),
            ],
            "short",
            12,
            32,
        ),
        series(
            # A batch call serves up to the platform's batch size of creators: well under 1
            # call per creator when batching works; 1 or more means single lookups or retries.
            "API calls per creator fetched",
            [
                (
                    f"sum by (platform) (rate(creatordeck_platform_calls_total{rate}))"
                    " / clamp_min(sum by (platform) (rate(creatordeck_fetch_results_total"
                    f'{{outcome=~"fetched|not_modified"}}{rate})), 1e-9)',
                    "{{platform}}",
                )
            ],
            "short",
            0,
            40,
        ),
    ]
    # One stat per alert condition: its own expression (1 while it holds, empty while not).
    for i, condition in enumerate(CONDITIONS):
        found.append(
            Stat(
                title=condition.name,
                dataSource=DATASOURCE,
                targets=[
                    Target(
                        expr=f"count(({condition.promql()})) or vector(0)",
                        refId="A",
                        datasource=DATASOURCE,
                    )
                ],
                thresholds=[
                    Threshold("green", 0, 0.0),
                    Threshold("red", 1, 1.0),
                ],
                colorMode="background",
                gridPos=GridPos(h=3, w=4, x=(i % 6) * 4, y=48 + (i // 6) * 3),
            )
        )
    return found


def build() -> GDashboard:
    return GDashboard(
        title="creatordeck",
        uid="creatordeck",
        description="Generated by deploy/grafana/dashboard.py (grafanalib); do not edit.",
        tags=["creatordeck"],
        timezone="utc",
        refresh="30s",
        panels=panels(),
    ).auto_panel_ids()


def render() -> str:
    return json.dumps(build().to_json_data(), cls=DashboardEncoder, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    text = render()
    if args.write:
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(text, encoding="utf-8")
        print(f"wrote {OUT}")
    elif args.check:
        if not OUT.exists() or OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT} is stale: run python deploy/grafana/dashboard.py --write")
            return 1
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
