"""``/metrics``: the daemon's state in Prometheus' text format, read at scrape time.

A custom collector rather than counters kept in memory: progress lives in the database,
so the numbers survive restarts and every replica (leader or standby) reports the same.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector, CollectorRegistry

from daemon.serve import readmodel
from daemon.state.store import Store
from daemon.state.tables import PIPELINE, CriticStatus, ReleaseState


class StateCollector(Collector):
    """``poll_intervals``: each registry's configured seconds between polls, so an alert can
    tell a late poll from a slow schedule."""

    def __init__(self, store: Store, poll_intervals: Mapping[str, float]) -> None:
        self.store = store
        self.poll_intervals = dict(poll_intervals)

    def collect(self) -> Iterator[Metric]:
        counts = readmodel.counts(self.store)
        states = counts["states"]
        yield _counter(
            "eliq_releases_discovered",
            "Releases the registries have reported.",
            sum(states.values()),
        )
        yield _counter(
            "eliq_releases_processed", "Releases through their whole cycle.", states.get("done", 0)
        )
        yield _counter(
            "eliq_releases_failed", "Releases parked after failing a step.", states.get("parked", 0)
        )
        by_state = GaugeMetricFamily(
            "eliq_releases", "Releases in each state of the cycle.", labels=["state"]
        )
        for state in [*PIPELINE, ReleaseState.parked]:
            by_state.add_metric([state], states.get(state, 0))
        yield by_state
        versions = GaugeMetricFamily(
            "eliq_critic_versions", "Critic versions in each status.", labels=["status"]
        )
        for status in CriticStatus:
            versions.add_metric([status], counts["statuses"].get(status, 0))
        yield versions

        steps = SummaryMetricFamily(
            "eliq_step_duration_seconds", "Wall time of finished steps and jobs.", labels=["step"]
        )
        failures = CounterMetricFamily(
            "eliq_step_failures", "Steps and jobs that ended in an error.", labels=["step"]
        )
        for step, stats in sorted(readmodel.step_durations(self.store).items()):
            steps.add_metric([step], stats["count"], stats["seconds"])
            failures.add_metric([step], stats["failed"])
        yield steps
        yield failures

        loss = GaugeMetricFamily(
            "eliq_training_final_loss", "Loss at a critic version's last step.", labels=["version"]
        )
        accuracy = GaugeMetricFamily(
            "eliq_held_out_pair_accuracy",
            "Held-out pair accuracy of each critic version and its baseline.",
            labels=["version", "role", "scope"],
        )
        champion = GaugeMetricFamily(
            "eliq_champion_version", "MLflow version number of the champion critic."
        )
        for version in readmodel.critic_versions(self.store):
            label = str(version["store_version"])
            if version["training"].get("final_loss") is not None:
                loss.add_metric([label], version["training"]["final_loss"])
            for key, value in version["accuracy"].items():
                if value is not None:
                    role, scope = key.split("_", 1)
                    accuracy.add_metric([label, role, scope], value)
            if version["status"] == CriticStatus.champion and label.isdigit():
                champion.add_metric([], int(label))
        yield loss
        yield accuracy
        yield champion

        means = GaugeMetricFamily(
            "eliq_generator_mean_score",
            "Mean score of each release's samples under the champion critic.",
            labels=["generator", "release", "axis"],
        )
        for row in readmodel.leaderboard(self.store):
            for axis in ("quality", "alignment"):
                if row[axis] is not None:
                    means.add_metric([row["generator"], row["release"], axis], row[axis])
        yield means

        drifted = GaugeMetricFamily(
            "eliq_drift_detected",
            "1 when the latest drift check of a kind breached a threshold.",
            labels=["kind"],
        )
        checks = CounterMetricFamily(
            "eliq_drift_checks", "Drift checks run.", labels=["kind", "drifted"]
        )
        latest: dict[str, bool] = {}
        tally: dict[tuple[str, str], int] = {}
        for check in readmodel.drift_checks(self.store):
            latest[check.kind] = check.drifted
            key = (check.kind, str(check.drifted).lower())
            tally[key] = tally.get(key, 0) + 1
        for kind, flag in sorted(latest.items()):
            drifted.add_metric([kind], int(flag))
        for labels, count in sorted(tally.items()):
            checks.add_metric(list(labels), count)
        yield drifted
        yield checks

        alerts = CounterMetricFamily(
            "eliq_alerts_sent",
            "Alerts sent, per channel and outcome.",
            labels=["channel", "outcome"],
        )
        for row in counts["alerts"]:
            outcome = "delivered" if row["delivered"] else "failed"
            alerts.add_metric([row["channel"], outcome], row["count"])
        yield alerts

        polled = GaugeMetricFamily(
            "eliq_registry_last_poll_timestamp_seconds",
            "When each registry was last polled successfully.",
            labels=["registry"],
        )
        for registry, moment in sorted(counts["polls"].items()):
            polled.add_metric([registry], moment.timestamp())
        yield polled
        interval = GaugeMetricFamily(
            "eliq_registry_poll_interval_seconds",
            "Each registry's configured seconds between polls.",
            labels=["registry"],
        )
        for registry, seconds in sorted(self.poll_intervals.items()):
            interval.add_metric([registry], seconds)
        yield interval

        scoring = counts["scoring"]
        yield _counter(
            "eliq_scoring_images",
            "Release images the champion scored in timed runs.",
            scoring["images"],
        )
        yield _counter(
            "eliq_scoring_seconds",
            "Wall seconds those scoring runs took (with their executor's start-up).",
            scoring["seconds"],
        )


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


def registry_for(store: Store, poll_intervals: Mapping[str, float]) -> CollectorRegistry:
    """A registry holding only the daemon's collector (no process metrics of the server)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StateCollector(store, poll_intervals))
    return registry
