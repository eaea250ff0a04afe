"""The one list of alert conditions: Prometheus rules and the console are both made from it.

Each `Condition` is a name, a severity, a threshold, a `for` duration, a summary, a runbook
line and the PromQL that Prometheus evaluates. `engine.alerts.rules` writes
`deploy/prometheus/alerts.yml` from this table (a test checks the committed file is what it
would write), and `engine.alerts.evaluate` checks the same conditions against the same facts read
straight from Postgres and Redis (`engine.alerts.facts`), so the console shows alerts without
Prometheus. Change a threshold here, regenerate the rules (`python -m engine.alerts.rules
--write`), and both sides move together.

Where Prometheus cannot see a fact (a fire time with no ledger row, an outcome-unknown post,
a token's expiry), the engine exports it as a gauge from the same facts the console reads
(`engine.alerts.sampler`); the rule then only compares that gauge with the threshold. Several
engine replicas export the same gauges, so rules take their `max` (or `min`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum


class Severity(StrEnum):
    PAGE = "page"  # wake someone: work is not getting done
    TICKET = "ticket"  # someone should look today


@dataclass(frozen=True, slots=True)
class Condition:
    name: str  # the alert's name, in Prometheus and the console
    severity: Severity
    threshold: float  # in `unit`; the PromQL below has it as {threshold}
    for_s: int  # how long the condition must hold before it fires
    summary: str
    runbook: str  # one line: what to look at and what to do first
    expr: str  # PromQL, with {threshold} filled in from `threshold`
    unit: str = ""  # "s", "ratio", "count": the threshold's unit, and the value's unless below
    # The value's unit where it differs from the threshold's: RegionFireTimeMissed's threshold is
    # an age (120 s) but what it observes, here and in Prometheus, is how many regions are late.
    value_unit: str | None = None

    @property
    def observed_unit(self) -> str:
        """The unit of the observed value (notices carry it beside `unit`)."""
        return self.unit if self.value_unit is None else self.value_unit

    def promql(self) -> str:
        return self.expr.format(threshold=_number(self.threshold))


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


# Windows over which rates are taken, shared by the rules and the console's queries.
RATE_WINDOW_S = 900
DEAD_LETTER_WINDOW_S = 1800

CONDITIONS: tuple[Condition, ...] = (
    Condition(
        name="RegionFireTimeMissed",
        severity=Severity.PAGE,
        threshold=120,
        for_s=0,
        unit="s",
        value_unit="count",
        summary="a region's fire time passed {threshold} s ago and the ledger has no row for it",
        runbook="no scheduler is ticking: check `creatordeck engine --check`, the engine's logs "
        "(scheduler.reconcile_failed), then Redis; fire times come back per the catch-up policy",
        expr="max(creatordeck_regions_overdue) > 0",
    ),
    Condition(
        name="TickFailureRate",
        severity=Severity.PAGE,
        threshold=0.2,
        for_s=300,
        unit="ratio",
        summary="more than {threshold} of region ticks failed over 15 minutes",
        runbook=":runs filtered on failed shows the error; a platform outage shows in :overview",
        expr='sum(rate(creatordeck_ticks_total{{outcome="failed"}}[15m]))'
        ' / sum(rate(creatordeck_ticks_total{{outcome=~"ok|failed"}}[15m])) > {threshold}',
    ),
    Condition(
        name="TickLagHigh",
        severity=Severity.TICKET,
        threshold=60,
        for_s=300,
        unit="s",
        summary="tick lag p99 over 15 minutes is above {threshold} s",
        runbook="workers are short: :overview queue depth and replicas; add engine replicas or "
        "raise CONCURRENCY",
        expr="histogram_quantile(0.99, sum by (le) "
        "(rate(creatordeck_tick_lag_seconds_bucket[15m]))) > {threshold}",
    ),
    Condition(
        name="TickRunningLong",
        severity=Severity.TICKET,
        threshold=900,
        for_s=0,
        unit="s",
        summary="a region tick has been running for more than {threshold} s",
        runbook=":runs filtered on running shows it; its fetch jobs are in :queues fetch; "
        "a platform breaker or quota may be holding them",
        expr="max(creatordeck_tick_oldest_running_seconds) > {threshold}",
    ),
    Condition(
        name="PublishFailures",
        severity=Severity.PAGE,
        threshold=0,
        for_s=0,
        unit="count",
        summary="publications failed for good in the last 15 minutes",
        runbook=":posts shows the error per account; `r` retries once the cause is fixed "
        "(an expired token: reconnect the account)",
        expr='sum(increase(creatordeck_publish_results_total{{outcome="failed"}}[15m]))'
        " > {threshold}",
    ),
    Condition(
        name="PublishOutcomeUnknown",
        severity=Severity.PAGE,
        threshold=0,
        for_s=0,
        unit="count",
        summary="posts whose outcome is unknown are waiting for a person",
        runbook="check the account on the platform, then :posts → `u` resolves each one "
        "(published or not); never retry blindly",
        expr="max(creatordeck_publications_unknown) > {threshold}",
    ),
    Condition(
        name="BreakerOpenLong",
        severity=Severity.PAGE,
        threshold=0,
        for_s=300,
        unit="",
        summary="a platform's circuit breaker has not closed for 5 minutes",
        runbook="the platform is failing: :connections shows the breaker's reason; check the "
        "platform's status page; work defers meanwhile, nothing is lost",
        expr="max by (platform) (creatordeck_breaker_open) > {threshold}",
    ),
    Condition(
        name="QuotaNearlyUsed",
        severity=Severity.TICKET,
        threshold=0.9,
        for_s=120,
        unit="ratio",
        summary="a platform's API quota is more than {threshold} used",
        runbook="fetches will wait for quota: :overview shows use per platform; spread region "
        "schedules or raise the platform's *_QUOTA if the platform allows",
        expr="max by (platform) (creatordeck_quota_used_ratio) > {threshold}",
    ),
    Condition(
        name="DeadLettersGrowing",
        severity=Severity.TICKET,
        threshold=0,
        for_s=0,
        unit="count",
        summary="work failed for good and went to the dead letters in the last 30 minutes",
        runbook=":deadletters shows each error; requeue (`r`/`R`) once the cause is fixed, "
        "drop (`d`) what is gone for good",
        expr="max(creatordeck_dead_letters_recent) > {threshold}",
    ),
    Condition(
        name="EngineReplicaGone",
        severity=Severity.PAGE,
        threshold=1,
        for_s=60,
        unit="count",
        summary="fewer than {threshold} engine replica(s) alive, or a scraped engine is down",
        runbook="`creatordeck engine --check`; restart the engine (its container logs say why "
        "it stopped); ticks owed meanwhile follow each region's catch-up policy",
        expr="(max(creatordeck_engine_replicas) or vector(0)) < {threshold}"
        ' or min(up{{job="creatordeck-engine"}}) == 0',
    ),
    Condition(
        name="PostgresUnreachable",
        severity=Severity.PAGE,
        threshold=0,
        for_s=60,
        unit="",
        summary="Postgres does not answer",
        runbook="check the database server and DATABASE_URL; the engine retries by itself and "
        "no tick is lost (the ledger catches up)",
        expr='min(creatordeck_dependency_up{{dependency="postgres"}}) == {threshold}',
    ),
    Condition(
        name="RedisUnreachable",
        severity=Severity.PAGE,
        threshold=0,
        for_s=60,
        unit="",
        summary="Redis does not answer",
        runbook="check the Redis server and REDIS_URL; after a wipe the scheduler rebuilds "
        "every pending tick and publication from Postgres",
        expr='min(creatordeck_dependency_up{{dependency="redis"}}) == {threshold}',
    ),
    Condition(
        name="EventRejectionRate",
        severity=Severity.TICKET,
        threshold=0.1,
        for_s=300,
        unit="ratio",
        summary="more than {threshold} of app events were refused over 15 minutes",
        runbook="an app release sends bad events: the api logs events.refused with the reason; "
        "tell the app team",
        expr='sum(rate(creatordeck_events_total{{outcome="refused"}}[15m]))'
        " / sum(rate(creatordeck_events_total[15m])) > {threshold}",
    ),
    Condition(
        name="TokenExpiring",
        severity=Severity.TICKET,
        threshold=259_200,
        for_s=0,
        unit="s",
        summary="a connected account's token expires within {threshold} s (3 days)",
        runbook=":connections shows which; connect it again (`r` there, or `creatordeck "
        "connections connect`) before it expires, or publishing to it stops",
        expr="min by (platform) (creatordeck_token_expires_in_seconds) < {threshold}",
    ),
)

BY_NAME: dict[str, Condition] = {condition.name: condition for condition in CONDITIONS}


def with_for_cap(
    max_s: int | None, conditions: tuple[Condition, ...] = CONDITIONS
) -> tuple[Condition, ...]:
    """The conditions with no `for` longer than `max_s` (ALERT_FOR_MAX_S; None: as written).

    For the demo, where waiting 5 minutes to see an alert fire teaches nothing; the console
    prints each condition's `for` as judged, so the shorter wait is visible.
    """
    if max_s is None:
        return conditions
    return tuple(replace(c, for_s=min(c.for_s, max_s)) for c in conditions)


def summary_of(condition: Condition) -> str:
    return condition.summary.format(threshold=_number(condition.threshold))
