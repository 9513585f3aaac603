"""Decide: promote the challenger when it passes the gate (and the mode is auto), else
hold it; the store's tags say which and why."""

from __future__ import annotations

from daemon.cycle.context import ReleaseContext, StepResult
from daemon.policy.gate import gate_decision
from daemon.policy.promotion import gate_tags, promote
from daemon.state.tables import CriticStatus, EvaluationRecord, utcnow


def decide(context: ReleaseContext) -> StepResult:
    store, settings, version = context.store, context.settings, context.version
    evaluations = store.rows(EvaluationRecord, critic_version_id=version.id)
    decision = gate_decision(evaluations, settings.gate, version.parent_version is None)
    promoting = decision.passed and settings.gate.mode == "auto"
    if decision.passed and not promoting:
        decision = decision.waiting_for_a_person()
    version.gate, version.decided_at = decision.record(), utcnow()
    rows = promote(context.ports, version) if promoting else [version]
    if not promoting:
        version.status = CriticStatus.held
    context.ports.critics.tag_version(version.store_version, gate_tags(version))
    return StepResult(save=rows)
