"""The promotion gate: does a retuned critic replace the champion?

Label-free, on held-out pairs only. The challenger is compared with its baseline, the
champion: it must gain (by at least ``min_gain``) on the new release's held-out pairs and
lose no more than ``forgetting_margin`` on the earlier releases' held-out pairs. A first
release has no champion to gain over: its baseline is the critic the retune started from
(an initial checkpoint, or the pre-trained backbones' prior), and the challenger may not
fall more than ``forgetting_margin`` below it.

Held-out sets can be small (a release of 24 images holds out a handful of positives), and
one pair more or less moves the accuracy by several points. So a *loss* blocks promotion
only when it exceeds its margin by more than the sampling noise of the two accuracies at
``confidence`` (one-sided; normal approximation to the binomial over each side's pairs).
The gain a later release must show is not discounted: noise never promotes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist
from typing import Any

from daemon.settings import GateSettings
from daemon.state import EvaluationRecord


def gate_decision(
    evaluations: Sequence[EvaluationRecord], settings: GateSettings, first: bool = False
) -> dict[str, Any]:
    """``{"passed", "reasons", "checks", "mode"}`` from the challenger's and baseline's
    evaluations (roles ``challenger``/``baseline``, scopes ``new``/``earlier``); ``first``:
    the release has no champion to gain over."""
    by_key = {(e.role, e.scope): e for e in evaluations}
    z = NormalDist().inv_cdf(settings.confidence)
    reasons: list[str] = []
    new = [by_key.get(("challenger", "new")), by_key.get(("baseline", "new"))]
    gain = _difference(*new)
    noise_new = z * _noise(*new)
    floor = -settings.forgetting_margin - noise_new if first else settings.min_gain
    if gain is None:
        reasons.append("no held-out pairs of the new release to compare on")
    elif gain < floor:
        reasons.append(f"gain on the new release {gain:+.3f} < {floor:+.3f}")
    earlier = [by_key.get(("baseline", "earlier")), by_key.get(("challenger", "earlier"))]
    forgetting = _difference(*earlier)
    allowed = settings.forgetting_margin + z * _noise(*earlier)
    if forgetting is not None and forgetting > allowed:
        reasons.append(f"forgets earlier releases: -{forgetting:.3f} beyond -{allowed:.3f}")
    return {
        "passed": not reasons,
        "reasons": reasons,
        "checks": {"gain_on_new": gain, "forgetting": forgetting},
        "allowed_loss": {"new": -floor if first else None, "earlier": allowed},
        "mode": settings.mode,
    }


def _difference(a: EvaluationRecord | None, b: EvaluationRecord | None) -> float | None:
    if a is None or b is None or a.accuracy is None or b.accuracy is None:
        return None
    return a.accuracy - b.accuracy


def _noise(a: EvaluationRecord | None, b: EvaluationRecord | None) -> float:
    """Standard error of the difference of two accuracies (0 where a count is unknown)."""
    if a is None or b is None or a.accuracy is None or b.accuracy is None:
        return 0.0
    if not a.pairs or not b.pairs:
        return 0.0
    return math.sqrt(
        a.accuracy * (1 - a.accuracy) / a.pairs + b.accuracy * (1 - b.accuracy) / b.pairs
    )
