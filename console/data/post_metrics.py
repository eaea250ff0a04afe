"""Read model of how published posts did: each publication's metrics series (`post_metric`),
for the Posts screen's detail. One query per post detail opened."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from console.data.creators import sparkline as sparkline
from storage.database import Database
from storage.queries import post_metrics

METRICS = ("views", "likes", "comments", "shares")


@dataclass(frozen=True, slots=True)
class MetricPoint:
    step_s: int
    fetched_at: datetime
    views: int | None
    likes: int | None
    comments: int | None
    shares: int | None

    def value(self, metric: str) -> int | None:
        value: int | None = getattr(self, metric)
        return value


async def load_post_metrics(db: Database, post_id: int) -> dict[int, tuple[MetricPoint, ...]]:
    """Each publication's points, oldest first, by publication id (absent: none read yet)."""
    async with db.session() as session:
        rows = await post_metrics.series_of_post(session, post_id)
    series: dict[int, list[MetricPoint]] = {}
    for r in rows:
        point = MetricPoint(r.step_s, r.fetched_at, r.views, r.likes, r.comments, r.shares)
        series.setdefault(r.publication_id, []).append(point)
    return {pub_id: tuple(points) for pub_id, points in series.items()}


def step_label(step_s: int) -> str:
    """3600 → "1h", 604800 → "7d"."""
    if step_s % 86_400 == 0:
        return f"{step_s // 86_400}d"
    if step_s % 3600 == 0:
        return f"{step_s // 3600}h"
    return f"{step_s // 60}m"


def metric_lines(points: tuple[MetricPoint, ...]) -> list[str]:
    """Plain-text lines for a publication: the latest counts, then one sparkline per metric
    the platform reports (a trend needs two reads)."""
    if not points:
        return []
    last = points[-1]
    shown = [m for m in METRICS if last.value(m) is not None]
    head = "  ".join(f"{m} {last.value(m):,}" for m in shown)
    lines = [f"metrics @{step_label(last.step_s)}: {head or 'none reported'}"]
    for metric in shown:
        values = [v for p in points if (v := p.value(metric)) is not None]
        spark = sparkline(values)
        if spark:
            lines.append(f"{metric:>8} {spark} {values[0]:,} → {values[-1]:,}")
    return lines
