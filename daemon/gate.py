"""The promotion gate: does a retuned critic replace the champion?

Label-free, on held-out pairs only: the challenger must gain (by at least ``min_gain``) over
its baseline on the new release's held-out pairs, and lose no more than
``forgetting_margin`` on the earlier releases' held-out pairs. The baseline is the champion,
or for a first release the critic the retune started from.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from daemon.settings import GateSettings
from daemon.state import EvaluationRecord


def gate_decision(
    evaluations: Sequence[EvaluationRecord], settings: GateSettings
) -> dict[str, Any]:
    """``{"passed", "reasons", "checks", "mode"}`` from the challenger's and baseline's
    evaluations (roles ``challenger``/``baseline``, scopes ``new``/``earlier``)."""
    accuracy = {(e.role, e.scope): e.accuracy for e in evaluations}
    reasons: list[str] = []
    gain = _difference(accuracy.get(("challenger", "new")), accuracy.get(("baseline", "new")))
    if gain is None:
        reasons.append("no held-out pairs of the new release to compare on")
    elif gain < settings.min_gain:
        reasons.append(f"gain on the new release {gain:+.3f} < {settings.min_gain:+.3f}")
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
