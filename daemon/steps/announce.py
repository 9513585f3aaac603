"""Announce: the release's drift breaches as incidents, and the gate's decision."""

from __future__ import annotations

from adapters.critic_stores import CHAMPION
from daemon.context import ReleaseContext, StepResult
from daemon.incidents import raise_drift
from daemon.promotion import decision_alert
from daemon.state import DriftCheck


def announce(context: ReleaseContext) -> StepResult:
    release, ports = context.release, context.ports
    version = context.store.critic_for(release.id)
    for check in context.store.rows(DriftCheck, release_id=release.id):
        if check.kind in ("critic", "generator"):
            raise_drift(ports, check, release)
    outcome = "promoted to champion" if version.status == CHAMPION else "held"
    ports.alerter.send(decision_alert(version, outcome, f"critic:{release.id}"))
    return []
