"""Check drift: critic drift (the critic the retune started from against the challenger,
ranking the anchor set) and generator shift (this release's scores against the earlier
releases', under the challenger), each saved with its reports and published."""

from __future__ import annotations

import pandas as pd

from daemon.cycle import history
from daemon.cycle.context import ReleaseContext, StepResult
from daemon.policy.drift import AxisCheck, DriftResult, agreement_checks, save_check, shift_checks
from daemon.policy.incidents import publish_report
from daemon.state.tables import DriftCheck


def check_drift(context: ReleaseContext) -> StepResult:
    release, ports, version = context.release, context.ports, context.version
    store, settings, challenger = ports.store, ports.settings, context.challenger
    anchors = history.anchors(ports, release)
    parent = history.score_frame(ports, context.baseline, anchors)
    current = history.score_frame(ports, challenger, anchors)

    def save(
        kind: str, reference: pd.DataFrame, new: pd.DataFrame, checks: list[AxisCheck]
    ) -> DriftResult:
        tags = [kind, f"generator:{release.name}"]
        folder = context.workspace.drift(kind)
        metadata = {"release": release.id}
        return save_check(ports.drift, reference, new, checks, folder, tags, metadata)

    drift = settings.drift
    results = {"critic": save("critic", parent, current, agreement_checks(parent, current, drift))}
    earlier = history.earlier_samples(ports, release)
    if len(earlier):
        reference = history.score_frame(ports, challenger, earlier)
        new = history.score_frame(ports, challenger, history.samples(ports, release))
        shift = shift_checks(reference, new, drift)
        results["generator"] = save("generator", reference, new, shift)
    rows = []
    for kind, result in results.items():
        rows.append(
            DriftCheck(
                kind=kind,
                release_id=release.id,
                drifted=result.drifted,
                summary=result.summary,
                report_html=str(result.report_html),
                report_json=str(result.report_json),
            )
        )
        ports.critics.attach_files(
            version.store_version, result.report_html.parent, f"drift/{kind}"
        )
        publish_report(ports, kind, release, result)
    replaced = [  # a re-run replaces, never doubles
        old for old in store.rows(DriftCheck, release_id=release.id) if old.kind in results
    ]
    return StepResult(save=rows, delete=replaced)
