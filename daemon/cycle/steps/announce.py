"""Announce: the release's drift breaches as incidents, and the gate's decision."""

from __future__ import annotations

from daemon.cycle.context import ReleaseContext, StepResult
from daemon.policy.incidents import raise_drift
from daemon.policy.promotion import decision_alert
from daemon.state.tables import CriticStatus, DriftCheck


def announce(context: ReleaseContext) -> StepResult:
    release, ports, version = context.release, context.ports, context.version
    for check in context.store.rows(DriftCheck, release_id=release.id):
        if check.kind in ("critic", "generator"):
            raise_drift(ports, check, release)
    promoted = version.status == CriticStatus.champion
    outcome = "promoted to champion" if promoted else "held"
    ports.alerter.send(decision_alert(version, outcome, f"critic:{release.id}"))
    return StepResult()
