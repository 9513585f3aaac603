"""Decide: promote the challenger when it passes the gate (and the mode is auto), else
hold it; the registry's tags say which and why."""

from __future__ import annotations

from typing import Any

from daemon.context import ReleaseContext, StepResult
from daemon.gate import gate_decision
from daemon.promotion import gate_tags, promote
from daemon.state import EvaluationRecord, utcnow


def decide(context: ReleaseContext) -> StepResult:
    store, settings = context.store, context.settings
    version = store.critic_for(context.release.id)
    evaluations = store.rows(EvaluationRecord, critic_version_id=version.id)
    gate = gate_decision(evaluations, settings.gate, version.parent_version is None)
    version.gate = gate
    version.decided_at = utcnow()
    rows: list[Any] = [version]
    if gate["passed"] and settings.gate.mode == "auto":
        rows += promote(context.ports, version)
    else:
        version.status = "held"
        if gate["passed"]:
            gate["why"] += "; manual mode: waiting for `eliq-daemon promote`"
    context.ports.critics.tag_version(version.mlflow_version, gate_tags(version))
    return rows
