"""The promotion gate: does a retuned critic replace the champion?

Label-free, on held-out pairs only. The challenger is compared with its baseline, the
champion: it must gain (by at least ``min_gain``) on the new release's held-out pairs and
lose no more than ``forgetting_margin`` on the earlier releases' held-out pairs. A first
release has no champion to gain over: its baseline is the critic the retune started from
(an initial checkpoint, or the pre-trained backbones' prior), and the challenger may not
fall more than ``forgetting_margin`` below it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from daemon.settings import GateSettings
from daemon.state import EvaluationRecord


def gate_decision(
    evaluations: Sequence[EvaluationRecord], settings: GateSettings, first: bool = False
) -> dict[str, Any]:
    """``{"passed", "reasons", "checks", "mode"}`` from the challenger's and baseline's
    evaluations (roles ``challenger``/``baseline``, scopes ``new``/``earlier``); ``first``:
    the release has no champion to gain over."""
    accuracy = {(e.role, e.scope): e.accuracy for e in evaluations}
    reasons: list[str] = []
    gain = _difference(accuracy.get(("challenger", "new")), accuracy.get(("baseline", "new")))
    floor = -settings.forgetting_margin if first else settings.min_gain
    if gain is None:
        reasons.append("no held-out pairs of the new release to compare on")
    elif gain < floor:
        reasons.append(f"gain on the new release {gain:+.3f} < {floor:+.3f}")
    forgetting = _difference(
        accuracy.get(("baseline", "earlier")), accuracy.get(("challenger", "earlier"))
    )
    if forgetting is not None and forgetting > settings.forgetting_margin:
        reasons.append(
            f"forgets earlier releases: -{forgetting:.3f} beyond -{settings.forgetting_margin}"
        )
    return {
        "passed": not reasons,
        "reasons": reasons,
        "checks": {"gain_on_new": gain, "forgetting": forgetting},
        "mode": settings.mode,
    }


def _difference(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b
